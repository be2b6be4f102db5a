using Microsoft.Extensions.Logging;

namespace AgentHost.Llama.Models;

/// <summary>
/// How a stand-in file is kept in the user cache, however it is made (widened, quantized): an existing file is reused
/// when the SHA-256 recorded beside it holds (and the catalog's, if any) and it is what was asked for; otherwise it is
/// built into a private <c>.part</c> file, checked against the catalog's digest and renamed into place with its digest.
/// </summary>
internal static partial class StandInFiles
{
    private static int _partCounter;

    /// <summary>The catalog's SHA-256, normalised, or a clear error when it is not one.</summary>
    public static string? Expected(string name, string? sha256)
    {
        var expected = sha256?.Trim().ToLowerInvariant();
        if (expected is not null && !ModelDigest.IsSha256Hex(expected))
            throw new AgentHostException(ErrorKind.InvalidArgument, $"The catalog entry '{name}' has Sha256 '{sha256}', which is not 64 hexadecimal digits.");
        return expected;
    }

    /// <summary>Whether <paramref name="target"/> can be reused (logged either way); <paramref name="isWanted"/> says what else is wrong with it, or null.</summary>
    public static bool Reuse(string name, string target, string? expected, Func<GgufFile, string?> isWanted, ILogger logger)
    {
        if (!File.Exists(target))
            return false;
        var problem = Problem(target, expected, isWanted);
        if (problem is null)
        {
            LogReused(logger, name, target);
            return true;
        }
        LogRebuilding(logger, name, target, problem);
        return false;
    }

    private static string? Problem(string target, string? expected, Func<GgufFile, string?> isWanted)
    {
        try
        {
            if (ModelDigest.Recorded(target) is not { } recorded)
                return "no SHA-256 was recorded beside it";
            var actual = ModelDigest.Compute(target);
            if (!string.Equals(actual, recorded, StringComparison.OrdinalIgnoreCase))
                return $"its SHA-256 is {actual}, not the recorded {recorded}";
            if (expected is not null && actual != expected)
                return $"its SHA-256 is {actual}, not the catalog's {expected}";
            return isWanted(GgufFile.Read(target));
        }
        catch (AgentHostException e)
        {
            return e.Message;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return e.Message;
        }
    }

    /// <summary>
    /// Builds <paramref name="target"/>: <paramref name="write"/> fills a private part file, whose SHA-256 must be the
    /// catalog's (when it has one); then it and its digest are renamed into place. Nothing partial is left behind.
    /// </summary>
    public static void Build(string name, string target, string? expected, Action<string> write, ILogger logger)
    {
        var suffix = $".{Environment.ProcessId}-{Interlocked.Increment(ref _partCounter)}.part";
        var part = target + suffix;
        var digestPart = ModelDigest.PathFor(target) + suffix;
        var completed = false;
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            write(part);
            var digest = ModelDigest.Compute(part);
            if (expected is not null && digest != expected)
            {
                throw new AgentHostException(ErrorKind.InvalidModelFile,
                    $"The stand-in '{name}' was built with the SHA-256 {digest}, not the catalog's {expected}: its source file is not the one the catalog was made with; it was not kept.");
            }
            File.WriteAllText(digestPart, ModelDigest.Line(target, digest));
            File.Move(part, target, overwrite: true);
            File.Move(digestPart, ModelDigest.PathFor(target), overwrite: true);
            completed = true;
            LogBuilt(logger, name, target, digest);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new AgentHostException(ErrorKind.InvalidModelFile, $"Building the stand-in '{name}' at '{target}' failed: {e.Message.Trim().TrimEnd('.')}.", e);
        }
        finally
        {
            if (!completed)
            {
                PartialFiles.DeleteQuietly(part, logger);
                PartialFiles.DeleteQuietly(digestPart, logger);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Stand-in {Name} reused from {Path}")]
    private static partial void LogReused(ILogger logger, string name, string path);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Stand-in {Name} at {Path} is rebuilt: {Problem}")]
    private static partial void LogRebuilding(ILogger logger, string name, string path, string problem);

    [LoggerMessage(Level = LogLevel.Information, Message = "Built stand-in {Name} at {Path}, SHA-256 {Sha256}")]
    private static partial void LogBuilt(ILogger logger, string name, string path, string sha256);
}
