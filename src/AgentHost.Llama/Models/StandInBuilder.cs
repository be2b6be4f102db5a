using Microsoft.Extensions.Logging;

namespace AgentHost.Llama.Models;

/// <summary>
/// Keeps a stand-in model (see <see cref="ModelWidener"/>) in the user cache: reuses the file when it is intact
/// and built from the same source and shape, otherwise builds it again. A build goes to a private <c>.part</c>
/// file that is renamed into place only when complete, with its SHA-256 recorded beside it in
/// <c>FILE.sha256</c>, so no half-written stand-in is ever taken.
/// </summary>
internal sealed partial class StandInBuilder(ILogger logger)
{
    private const long HeaderAllowance = 64L << 20; // room for the header (vocabulary) beyond the weights, in the free-space check
    private static int _partCounter;

    /// <summary>Makes sure <paramref name="target"/> holds the stand-in; true when it was built now, false when reused.</summary>
    /// <param name="name">The catalog name, for messages.</param>
    /// <param name="sourcePath">The source model file.</param>
    /// <param name="shape">The target shape.</param>
    /// <param name="target">Where the stand-in lives (in the user cache).</param>
    /// <param name="expectedSha256">The catalog's SHA-256 of the stand-in, or null.</param>
    /// <param name="progress">Receives build progress.</param>
    /// <param name="cancellationToken">Cancels a build; the partial file is removed.</param>
    public Task<bool> EnsureAsync(
        string name,
        string sourcePath,
        StandInSettings shape,
        string target,
        string? expectedSha256,
        IProgress<DownloadProgress>? progress,
        CancellationToken cancellationToken)
        => Task.Run(() => Ensure(name, sourcePath, shape, target, expectedSha256, progress, cancellationToken), cancellationToken);

    private bool Ensure(string name, string sourcePath, StandInSettings shape, string target, string? expectedSha256, IProgress<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        var expected = expectedSha256?.Trim().ToLowerInvariant();
        if (expected is not null && !ModelDigest.IsSha256Hex(expected))
            throw new AgentHostException(ErrorKind.InvalidArgument, $"The catalog entry '{name}' has Sha256 '{expectedSha256}', which is not 64 hexadecimal digits.");

        var widener = new ModelWidener(GgufFile.Read(sourcePath), shape.EmbeddingLength, shape.FeedForwardLength, shape.BlockCount);
        if (File.Exists(target))
        {
            var problem = Verify(target, widener, expected);
            if (problem is null)
            {
                LogReused(logger, name, target);
                return false;
            }
            LogRebuilding(logger, name, target, problem);
        }
        Build(name, widener, target, expected, progress, cancellationToken);
        return true;
    }

    /// <summary>Why the existing file cannot be reused, or null when it can.</summary>
    private static string? Verify(string target, ModelWidener widener, string? expected)
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
            return widener.Matches(GgufFile.Read(target), out var mismatch) ? null : mismatch;
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

    private void Build(string name, ModelWidener widener, string target, string? expected, IProgress<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        var folder = Path.GetDirectoryName(target)!;
        var suffix = $".{Environment.ProcessId}-{Interlocked.Increment(ref _partCounter)}.part";
        var part = target + suffix;
        var digestPart = ModelDigest.PathFor(target) + suffix;
        var completed = false;
        LogBuilding(logger, name, target, widener.ParameterCount);
        try
        {
            Directory.CreateDirectory(folder);
            CheckFreeSpace(name, folder, widener.ParameterCount * sizeof(float) + HeaderAllowance);
            using (var file = new FileStream(part, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 20))
            {
                widener.Write(file, progress, cancellationToken);
                file.Flush(flushToDisk: true);
            }

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

    private static void CheckFreeSpace(string name, string folder, long needed)
    {
        long available;
        try
        {
            available = new DriveInfo(folder).AvailableFreeSpace;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return; // unknown: the write itself reports a full disk
        }
        if (available < needed)
        {
            throw new AgentHostException(ErrorKind.InvalidModelFile,
                $"The stand-in '{name}' needs about {needed / 1_000_000} MB but '{folder}' has {available / 1_000_000} MB free; free space or choose a smaller StandIn shape.");
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Stand-in {Name} reused from {Path}")]
    private static partial void LogReused(ILogger logger, string name, string path);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Stand-in {Name} at {Path} is rebuilt: {Problem}")]
    private static partial void LogRebuilding(ILogger logger, string name, string path, string problem);

    [LoggerMessage(Level = LogLevel.Information, Message = "Building stand-in {Name} ({Parameters} parameters) at {Path}")]
    private static partial void LogBuilding(ILogger logger, string name, string path, long parameters);

    [LoggerMessage(Level = LogLevel.Information, Message = "Built stand-in {Name} at {Path}, SHA-256 {Sha256}")]
    private static partial void LogBuilt(ILogger logger, string name, string path, string sha256);
}
