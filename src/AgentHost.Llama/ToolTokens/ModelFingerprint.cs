using System.Security.Cryptography;

namespace AgentHost.Llama.ToolTokens;

/// <summary>
/// Identity of a model file for artefacts trained on it (tool-token heads): SHA-256 of the whole file
/// when it is small, otherwise of its length, its header and the first and last 16 MiB of tensor data
/// (hashing gigabytes at every load would be too slow; these parts change whenever the weights do in practice).
/// </summary>
public static class ModelFingerprint
{
    private const long WholeFileLimit = 64L << 20;
    private const int Part = 16 << 20;

    /// <summary>Computes the fingerprint (lower-case hex) of the GGUF file at <paramref name="path"/>.</summary>
    public static string Compute(string path)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete);
            if (stream.Length <= WholeFileLimit)
                return Convert.ToHexStringLower(SHA256.HashData(stream));

            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            hash.AppendData(BitConverter.GetBytes(stream.Length));
            var buffer = new byte[Part];
            foreach (var start in new[] { 0, stream.Length - Part })
            {
                stream.Position = start;
                stream.ReadExactly(buffer);
                hash.AppendData(buffer);
            }
            return Convert.ToHexStringLower(hash.GetHashAndReset());
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new AgentHostException(ErrorKind.InvalidModelFile, $"Cannot read model file '{path}' to identify it: {e.Message}", e);
        }
    }
}
