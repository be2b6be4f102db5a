using System.Security.Cryptography;

namespace AgentHost.Llama.Models;

/// <summary>
/// The SHA-256 recorded beside a model file in <c>FILE.sha256</c> (<c>sha256sum</c> format): written for a stand-in
/// when it is built and for a download without a catalog checksum (trust on first use), checked on later uses.
/// </summary>
internal static class ModelDigest
{
    /// <summary>The file beside <paramref name="model"/> that records its SHA-256.</summary>
    public static string PathFor(string model) => model + ".sha256";

    /// <summary>The SHA-256 of a file, as lower-case hex.</summary>
    public static string Compute(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, bufferSize: 1 << 20, FileOptions.SequentialScan);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary>The digest recorded beside <paramref name="model"/>, or null when none is.</summary>
    public static string? Recorded(string model)
    {
        var file = PathFor(model);
        if (!File.Exists(file))
            return null;
        return File.ReadAllText(file).Split((char[]?)null, 2, StringSplitOptions.RemoveEmptyEntries).FirstOrDefault() ?? "";
    }

    /// <summary>The line that records <paramref name="digest"/> for <paramref name="model"/>.</summary>
    public static string Line(string model, string digest) => $"{digest}  {Path.GetFileName(model)}\n";

    /// <summary>Records <paramref name="digest"/> beside <paramref name="model"/> atomically (temporary file, then rename).</summary>
    public static void Record(string model, string digest)
    {
        var file = PathFor(model);
        var temporary = $"{file}.{Environment.ProcessId}-{Guid.NewGuid():N}.part";
        try
        {
            File.WriteAllText(temporary, Line(model, digest));
            File.Move(temporary, file, overwrite: true);
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    /// <summary>Whether <paramref name="value"/> is 64 hexadecimal digits.</summary>
    public static bool IsSha256Hex(string value)
    {
        if (value.Length != 64)
            return false;
        foreach (var c in value)
        {
            if (!char.IsAsciiHexDigit(c))
                return false;
        }
        return true;
    }
}
