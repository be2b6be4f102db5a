using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace AgentHost.Llama.Models;

/// <summary>
/// Downloads a model file over HTTP(S): streams into a private <c>.part</c> file next to the destination,
/// hashes while streaming, verifies the SHA-256 and renames into place, so that the destination either
/// holds the complete, verified file or does not appear at all. The file must also be a readable GGUF model
/// (header and tensor extents), checksum or not; <c>.part</c> files left by killed downloads are removed.
/// </summary>
public sealed partial class ModelDownloader
{
    private static readonly TimeSpan _progressInterval = TimeSpan.FromMilliseconds(100);
    private static int _partCounter;

    private readonly HttpClient _httpClient;
    private readonly ILogger _logger;
    private readonly TimeSpan _stallTimeout = TimeSpan.FromMinutes(1);

    /// <summary>Creates a downloader.</summary>
    /// <param name="httpClient">The client used for the requests; the caller owns it.</param>
    /// <param name="logger">Receives the start, the end and the hash of a download without a known checksum.</param>
    public ModelDownloader(HttpClient httpClient, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(httpClient);
        _httpClient = httpClient;
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>
    /// How long a download may go without receiving a byte before it is abandoned
    /// (<see cref="HttpClient.Timeout"/> only covers the response headers). Default: one minute.
    /// </summary>
    public TimeSpan StallTimeout
    {
        get => _stallTimeout;
        init
        {
            if (value <= TimeSpan.Zero && value != Timeout.InfiniteTimeSpan)
                throw new ArgumentOutOfRangeException(nameof(value), value, "The stall timeout must be positive or infinite.");
            _stallTimeout = value;
        }
    }

    /// <summary>Downloads <paramref name="url"/> to <paramref name="destination"/>.</summary>
    /// <param name="url">An absolute http or https URL.</param>
    /// <param name="destination">The file to create or replace; its folder is created if needed.</param>
    /// <param name="sha256">Expected SHA-256 as hex (any case); <see langword="null"/> skips the check and logs the computed hash as a warning.</param>
    /// <param name="progress">Receives progress at most about ten times a second, and once at the end.</param>
    /// <param name="cancellationToken">Cancels the download; the partial file is removed.</param>
    /// <exception cref="AgentHostException">
    /// <see cref="ErrorKind.DownloadFailed"/> for a non-success status, a network failure, a truncated body, a stall,
    /// a checksum mismatch, a file that is not a usable GGUF model or a file system error; <see cref="ErrorKind.InvalidArgument"/> for a malformed URL or checksum.
    /// </exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async Task DownloadAsync(
        Uri url,
        string destination,
        string? sha256,
        IProgress<DownloadProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(url);
        ArgumentException.ThrowIfNullOrWhiteSpace(destination);

        if (!url.IsAbsoluteUri || (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps))
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Cannot download '{url}': only absolute http and https URLs are supported.");

        var expected = string.IsNullOrWhiteSpace(sha256) ? null : sha256.Trim();
        if (expected is not null && !IsSha256Hex(expected))
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Cannot download '{url}': the expected SHA-256 '{expected}' is not 64 hexadecimal digits.");

        var target = Path.GetFullPath(destination);
        var folder = Path.GetDirectoryName(target)!;
        try
        {
            Directory.CreateDirectory(folder);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new AgentHostException(ErrorKind.DownloadFailed, $"Downloading '{url}' failed: cannot create the folder '{folder}' ({TrimPeriod(ex.Message)}).", ex);
        }

        DeleteAbandonedParts(target);
        var part = $"{target}.{Environment.ProcessId}-{Interlocked.Increment(ref _partCounter)}.part";
        long received = 0;
        long? total = null;
        var completed = false;
        LogStarting(_logger, url, target);
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, url);
            using var response = await _httpClient.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                var reason = string.IsNullOrWhiteSpace(response.ReasonPhrase) ? "" : " " + response.ReasonPhrase;
                throw new AgentHostException(ErrorKind.DownloadFailed, $"Downloading '{url}' failed: the server answered HTTP {(int)response.StatusCode}{reason}.");
            }

            total = response.Content.Headers.ContentLength;
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            using var stallTimer = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var source = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            await using (source.ConfigureAwait(false))
            {
                var file = new FileStream(part, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1, FileOptions.Asynchronous);
                await using (file.ConfigureAwait(false))
                {
                    var buffer = new byte[1 << 16];
                    var clock = Stopwatch.StartNew();
                    var lastReport = TimeSpan.Zero;
                    progress?.Report(new DownloadProgress(0, total));
                    while (true)
                    {
                        int read;
                        stallTimer.CancelAfter(StallTimeout);
                        try
                        {
                            read = await source.ReadAsync(buffer, stallTimer.Token).ConfigureAwait(false);
                            stallTimer.CancelAfter(Timeout.InfiniteTimeSpan);
                        }
                        catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
                        {
                            throw new AgentHostException(ErrorKind.DownloadFailed,
                                $"Downloading '{url}' failed: no data arrived for {StallTimeout.TotalSeconds:0.#} s after {received} bytes.", ex);
                        }
                        if (read == 0)
                            break;

                        hash.AppendData(buffer.AsSpan(0, read));
                        await file.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                        received += read;
                        if (progress is not null && clock.Elapsed - lastReport >= _progressInterval)
                        {
                            lastReport = clock.Elapsed;
                            progress.Report(new DownloadProgress(received, total));
                        }
                    }
                    if (total is long expectedLength && received != expectedLength)
                    {
                        throw new AgentHostException(ErrorKind.DownloadFailed,
                            $"Downloading '{url}' failed: the connection ended after {received} of {expectedLength} bytes.");
                    }
                    await file.FlushAsync(cancellationToken).ConfigureAwait(false);
                    file.Flush(flushToDisk: true);
                    progress?.Report(new DownloadProgress(received, total));
                }
            }

            var actual = Convert.ToHexStringLower(hash.GetHashAndReset());
            if (expected is null)
                LogNoChecksum(_logger, url, actual);
            else if (!string.Equals(actual, expected, StringComparison.OrdinalIgnoreCase))
            {
                throw new AgentHostException(ErrorKind.DownloadFailed,
                    $"Downloading '{url}' failed: the file's SHA-256 is {actual} but {expected.ToLowerInvariant()} was expected.");
            }

            // Without a checksum nothing else vouches for the bytes: a page of HTML must never reach the cache.
            if (Problem(part) is { } problem)
                throw new AgentHostException(ErrorKind.DownloadFailed, $"Downloading '{url}' failed: the file is not a usable GGUF model ({problem}); it was not kept.");
            File.Move(part, target, overwrite: true);
            completed = true;
            LogCompleted(_logger, url, target, received);
        }
        catch (AgentHostException)
        {
            throw;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (OperationCanceledException ex)
        {
            // Not our token: HttpClient.Timeout elapsed before the response headers arrived.
            throw new AgentHostException(ErrorKind.DownloadFailed,
                $"Downloading '{url}' failed: the server did not answer within {_httpClient.Timeout.TotalSeconds:0.#} s.", ex);
        }
        catch (HttpRequestException ex)
        {
            throw new AgentHostException(ErrorKind.DownloadFailed, $"Downloading '{url}' failed: {DescribeNetworkError(ex)}.", ex);
        }
        catch (HttpIOException ex)
        {
            var cause = ex.HttpRequestError == HttpRequestError.ResponseEnded && total is long length
                ? $"the connection ended after {received} of {length} bytes"
                : $"the connection broke off after {received} bytes ({TrimPeriod(ex.Message)})";
            throw new AgentHostException(ErrorKind.DownloadFailed, $"Downloading '{url}' failed: {cause}.", ex);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new AgentHostException(ErrorKind.DownloadFailed,
                $"Downloading '{url}' to '{target}' failed: {TrimPeriod(ex.Message)}.", ex);
        }
        finally
        {
            if (!completed)
                DeleteQuietly(part);
        }
    }

    /// <summary>Why <paramref name="path"/> is not a usable GGUF file (header and every tensor inside the file), or null when it is.</summary>
    internal static string? Problem(string path)
    {
        try
        {
            GgufFile.Read(path);
            return null;
        }
        catch (AgentHostException ex) when (ex.Kind is ErrorKind.InvalidModelFile or ErrorKind.ModelNotFound)
        {
            return TrimPeriod(ex.Message);
        }
    }

    // Parts are named TARGET.PID-N.part: one whose process is gone was left by a killed download.
    private void DeleteAbandonedParts(string target)
    {
        string[] parts;
        try
        {
            parts = Directory.GetFiles(Path.GetDirectoryName(target)!, Path.GetFileName(target) + ".*.part");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return;
        }
        foreach (var part in parts)
        {
            var tag = part[(target.Length + 1)..^".part".Length];
            var dash = tag.IndexOf('-', StringComparison.Ordinal);
            if (dash > 0 && int.TryParse(tag.AsSpan(0, dash), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var pid) && !IsRunning(pid))
                DeleteQuietly(part);
        }
    }

    private static bool IsRunning(int pid)
    {
        if (pid == Environment.ProcessId)
            return true;
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException)
        {
            return false;
        }
    }

    private static string DescribeNetworkError(HttpRequestException ex)
    {
        if (ex.InnerException is SocketException socket)
        {
            return socket.SocketErrorCode switch
            {
                SocketError.ConnectionRefused => "the connection was refused",
                SocketError.HostNotFound or SocketError.NoData => "the host name could not be resolved",
                SocketError.TimedOut => "the connection timed out",
                _ => TrimPeriod(socket.Message),
            };
        }
        if (ex.StatusCode is HttpStatusCode status)
            return $"the server answered HTTP {(int)status}";
        return TrimPeriod(ex.Message);
    }

    private static bool IsSha256Hex(string value)
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

    private static string TrimPeriod(string message) => message.Trim().TrimEnd('.');

    private void DeleteQuietly(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            LogPartNotDeleted(_logger, path, ex.Message);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Downloading {Url} to {Path}")]
    private static partial void LogStarting(ILogger logger, Uri url, string path);

    [LoggerMessage(Level = LogLevel.Information, Message = "Downloaded {Url} to {Path} ({Bytes} bytes)")]
    private static partial void LogCompleted(ILogger logger, Uri url, string path, long bytes);

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "The catalog gives no SHA-256 for {Url}, so the download was not verified; its SHA-256 is {Sha256} (add it to the catalog entry to verify future downloads)")]
    private static partial void LogNoChecksum(ILogger logger, Uri url, string sha256);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not delete the partial download {Path}: {Reason}")]
    private static partial void LogPartNotDeleted(ILogger logger, string path, string reason);
}
