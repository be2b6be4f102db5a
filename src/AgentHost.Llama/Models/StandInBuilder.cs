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
        var expected = StandInFiles.Expected(name, expectedSha256);
        var widener = new ModelWidener(GgufFile.Read(sourcePath), shape.EmbeddingLength, shape.FeedForwardLength, shape.BlockCount);
        if (StandInFiles.Reuse(name, target, expected, file => widener.Matches(file, out var mismatch) ? null : mismatch, logger))
            return false;
        LogBuilding(logger, name, target, widener.ParameterCount);
        StandInFiles.Build(name, target, expected, part =>
        {
            CheckFreeSpace(name, Path.GetDirectoryName(target)!, widener.ParameterCount * sizeof(float) + HeaderAllowance);
            using var file = new FileStream(part, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 20);
            widener.Write(file, progress, cancellationToken);
            file.Flush(flushToDisk: true);
        }, logger);
        return true;
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

    [LoggerMessage(Level = LogLevel.Information, Message = "Building stand-in {Name} ({Parameters} parameters) at {Path}")]
    private static partial void LogBuilding(ILogger logger, string name, string path, long parameters);
}
