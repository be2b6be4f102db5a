using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace AgentHost.Llama.Models;

/// <summary>
/// Downloads a model file over HTTP(S) into <c>TARGET.part</c> next to the destination, then hashes it,
/// verifies the SHA-256 and that the file is a readable GGUF model (header and tensor extents), then renames it into
/// place, so the destination either holds the complete, verified file or does not appear at all. Transient failures
/// (connection drop, stall, timeout, HTTP 408/429/5xx) are retried with exponential backoff, resuming with an HTTP
/// Range request (guarded by If-Range with the ETag or Last-Modified) where the server allows it. A lock file
/// <c>TARGET.lock</c> (opened exclusively; it also records the validator of the <c>.part</c>) keeps two processes
/// from writing the same download: the second waits, then takes the finished file.
/// </summary>
public sealed partial class ModelDownloader
{
    private static readonly TimeSpan _progressInterval = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan _lockPollInterval = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan _maxRetryDelay = TimeSpan.FromSeconds(30);

    private readonly HttpClient _httpClient;
    private readonly ILogger _logger;
    private readonly TimeSpan _stallTimeout = TimeSpan.FromMinutes(1);
    private readonly int _maxAttempts = 5;
    private readonly TimeSpan _retryDelay = TimeSpan.FromSeconds(1);
    private readonly TimeSpan _lockTimeout = TimeSpan.FromMinutes(30);

    /// <summary>Creates a downloader.</summary>
    /// <param name="httpClient">The client used for the requests; the caller owns it.</param>
    /// <param name="logger">Receives the start, the end, retries and the hash of a download without a known checksum.</param>
    public ModelDownloader(HttpClient httpClient, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(httpClient);
        _httpClient = httpClient;
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>
    /// How long a download may go without receiving a byte before the attempt is abandoned (and retried)
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

    /// <summary>How many attempts a download gets for transient failures, the first included (1 to 100). Default: 5.</summary>
    public int MaxAttempts
    {
        get => _maxAttempts;
        init
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, 100);
            _maxAttempts = value;
        }
    }

    /// <summary>The pause before the first retry; it doubles for each further one, up to 30 s. Default: one second.</summary>
    public TimeSpan RetryDelay
    {
        get => _retryDelay;
        init
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, TimeSpan.Zero);
            _retryDelay = value;
        }
    }

    /// <summary>How long to wait for another process downloading the same file before giving up. Default: 30 minutes.</summary>
    public TimeSpan LockTimeout
    {
        get => _lockTimeout;
        init
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, TimeSpan.Zero);
            _lockTimeout = value;
        }
    }

    /// <summary>
    /// A Hugging Face access token (e.g. from <c>HF_TOKEN</c>), sent as a bearer token to https URLs on huggingface.co
    /// and to <see cref="HuggingFaceEndpoint"/> only (never to another host; .NET drops it on a redirect). Needed for gated
    /// or private models.
    /// </summary>
    public string? HuggingFaceToken { get; init; }

    /// <summary>A Hugging Face mirror that also receives <see cref="HuggingFaceToken"/>; default <c>https://huggingface.co</c>.</summary>
    public Uri HuggingFaceEndpoint { get; init; } = new(HuggingFaceHub.DefaultEndpoint);

    /// <summary>The client the downloads use (also for the Hugging Face file list).</summary>
    internal HttpClient HttpClient => _httpClient;

    /// <summary>Downloads <paramref name="url"/> to <paramref name="destination"/>.</summary>
    /// <param name="url">An absolute http or https URL.</param>
    /// <param name="destination">The file to create or replace; its folder is created if needed.</param>
    /// <param name="sha256">Expected SHA-256 as hex (any case); <see langword="null"/> skips the check and logs the computed hash as a warning.</param>
    /// <param name="progress">Receives progress at most about ten times a second, and once at the end.</param>
    /// <param name="cancellationToken">Cancels the download; a partial file is kept only when it can be resumed.</param>
    /// <returns>The SHA-256 of the file now at <paramref name="destination"/>, as lower-case hex.</returns>
    /// <exception cref="AgentHostException">
    /// <see cref="ErrorKind.DownloadFailed"/> for a non-success status, a network failure, a truncated body or a stall
    /// that persist over <see cref="MaxAttempts"/>, a checksum mismatch, a file that is not a usable GGUF model, a full disk,
    /// another download of the same file that does not finish within <see cref="LockTimeout"/> or a file system error;
    /// <see cref="ErrorKind.InvalidArgument"/> for a malformed URL or checksum.
    /// </exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async Task<string> DownloadAsync(
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

        var expected = string.IsNullOrWhiteSpace(sha256) ? null : sha256.Trim().ToLowerInvariant();
        if (expected is not null && !ModelDigest.IsSha256Hex(expected))
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Cannot download '{url}': the expected SHA-256 '{sha256!.Trim()}' is not 64 hexadecimal digits.");

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
        var (lockFile, waited) = await AcquireLockAsync(url, target, cancellationToken).ConfigureAwait(false);
        await using (lockFile.ConfigureAwait(false))
        {
            try
            {
                // Another process held the lock: it has most likely just downloaded the file.
                if (waited && FinishedByAnother(target, expected) is { } digest)
                {
                    LogFoundAfterWaiting(_logger, target);
                    return digest;
                }
                return await DownloadLockedAsync(url, target, expected, lockFile, progress, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                // Deleted while still held (see AcquireLockAsync), unless it records how to resume the part.
                if (lockFile.Length == 0)
                    PartialFiles.DeleteQuietly(LockPath(target), _logger);
            }
        }
    }

    private async Task<string> DownloadLockedAsync(Uri url, string target, string? expected, FileStream lockFile, IProgress<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        var transfer = new Transfer(url, PartPath(target), lockFile);
        var completed = false;
        LogStarting(_logger, url, target);
        try
        {
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    await AttemptAsync(transfer, progress, cancellationToken).ConfigureAwait(false);
                    break;
                }
                catch (RetryableException ex) when (attempt < MaxAttempts)
                {
                    var delay = TimeSpan.FromTicks(Math.Min(_maxRetryDelay.Ticks, RetryDelay.Ticks << Math.Min(attempt - 1, 20)));
                    LogRetrying(_logger, url, attempt, MaxAttempts, ex.Message, delay.TotalSeconds);
                    await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
                }
                catch (RetryableException ex)
                {
                    var tries = MaxAttempts == 1 ? "" : $" after {MaxAttempts} attempts";
                    throw new AgentHostException(ErrorKind.DownloadFailed, $"Downloading '{url}' failed{tries}: {ex.Message}.", ex.InnerException);
                }
            }

            var actual = await Task.Run(() => ModelDigest.Compute(transfer.Part), cancellationToken).ConfigureAwait(false);
            if (expected is null)
                LogNoChecksum(_logger, url, actual);
            else if (actual != expected)
            {
                transfer.Discard();
                throw new AgentHostException(ErrorKind.DownloadFailed,
                    $"Downloading '{url}' failed: the file's SHA-256 is {actual} but {expected} was expected.");
            }

            // Without a checksum nothing else vouches for the bytes: a page of HTML must never reach the cache.
            if (Problem(transfer.Part) is { } problem)
            {
                transfer.Discard();
                throw new AgentHostException(ErrorKind.DownloadFailed, $"Downloading '{url}' failed: the file is not a usable GGUF model ({problem}); it was not kept.");
            }
            File.Move(transfer.Part, target, overwrite: true);
            completed = true;
            LogCompleted(_logger, url, target, transfer.Received);
            return actual;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new AgentHostException(ErrorKind.DownloadFailed,
                $"Downloading '{url}' to '{target}' failed: {TrimPeriod(ex.Message)}.", ex);
        }
        finally
        {
            // A part is kept only when a later attempt can resume it (the server gave a validator for If-Range).
            if (!completed && !transfer.IsResumable)
                transfer.Discard();
            if (completed || !transfer.IsResumable)
                transfer.ForgetValidator();
        }
    }

    /// <summary>One request: resumes the part when it can, else starts from zero; transient failures throw <see cref="RetryableException"/>.</summary>
    private async Task AttemptAsync(Transfer transfer, IProgress<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        var url = transfer.Url;
        var existing = File.Exists(transfer.Part) ? new FileInfo(transfer.Part).Length : 0;
        var validator = existing > 0 ? transfer.ReadValidator() : null;
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        if (validator is not null)
        {
            request.Headers.Range = new System.Net.Http.Headers.RangeHeaderValue(existing, null);
            request.Headers.TryAddWithoutValidation("If-Range", validator);
        }
        if (HuggingFaceToken is { Length: > 0 } token && HuggingFaceHub.SendsTokenTo(url, HuggingFaceEndpoint))
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);

        long received = 0;
        long? total = null;
        try
        {
            using var response = await _httpClient.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
            {
                transfer.Discard(); // the part does not fit the file on the server any more
                throw new RetryableException("the server refused to resume the partial download (HTTP 416)", null);
            }
            if (!response.IsSuccessStatusCode)
                throw StatusError(response);

            var resumes = response.StatusCode == HttpStatusCode.PartialContent
                && response.Content.Headers.ContentRange is { From: long from } range && from == existing;
            if (response.StatusCode == HttpStatusCode.PartialContent && !resumes)
            {
                transfer.Discard();
                throw new RetryableException("the server answered a different byte range than was asked for", null);
            }
            received = resumes ? existing : 0;
            total = resumes
                ? response.Content.Headers.ContentRange!.Length ?? (response.Content.Headers.ContentLength + existing)
                : response.Content.Headers.ContentLength;
            transfer.SaveValidator(resumes ? validator : Validator(response));
            CheckFreeSpace(transfer, total - received);

            using var stallTimer = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var source = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            await using (source.ConfigureAwait(false))
            {
                var file = new FileStream(transfer.Part, resumes ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 1, FileOptions.Asynchronous);
                await using (file.ConfigureAwait(false))
                {
                    var buffer = new byte[1 << 16];
                    var clock = Stopwatch.StartNew();
                    var lastReport = TimeSpan.Zero;
                    progress?.Report(new DownloadProgress(received, total));
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
                            throw new RetryableException($"no data arrived for {StallTimeout.TotalSeconds:0.#} s after {received} bytes", ex);
                        }
                        if (read == 0)
                            break;

                        try
                        {
                            await file.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                        }
                        catch (IOException ex) when (IsDiskFull(ex))
                        {
                            throw DiskFull(transfer, received, total, ex);
                        }
                        received += read;
                        transfer.Received = received;
                        if (progress is not null && clock.Elapsed - lastReport >= _progressInterval)
                        {
                            lastReport = clock.Elapsed;
                            progress.Report(new DownloadProgress(received, total));
                        }
                    }
                    if (total is long expectedLength && received != expectedLength)
                        throw new RetryableException($"the connection ended after {received} of {expectedLength} bytes", null);
                    try
                    {
                        await file.FlushAsync(cancellationToken).ConfigureAwait(false);
                        file.Flush(flushToDisk: true);
                    }
                    catch (IOException ex) when (IsDiskFull(ex))
                    {
                        throw DiskFull(transfer, received, total, ex);
                    }
                    progress?.Report(new DownloadProgress(received, total));
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (OperationCanceledException ex)
        {
            // Not our token: HttpClient.Timeout elapsed before the response headers arrived.
            throw new RetryableException($"the server did not answer within {_httpClient.Timeout.TotalSeconds:0.#} s", ex);
        }
        catch (HttpRequestException ex) when (ex.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionRefused or SocketError.HostNotFound or SocketError.NoData })
        {
            throw new AgentHostException(ErrorKind.DownloadFailed, $"Downloading '{url}' failed: {DescribeNetworkError(ex)}.", ex);
        }
        catch (HttpRequestException ex)
        {
            throw new RetryableException(DescribeNetworkError(ex), ex);
        }
        catch (HttpIOException ex)
        {
            var cause = ex.HttpRequestError == HttpRequestError.ResponseEnded && total is long length
                ? $"the connection ended after {received} of {length} bytes"
                : $"the connection broke off after {received} bytes ({TrimPeriod(ex.Message)})";
            throw new RetryableException(cause, ex);
        }
        catch (IOException ex) when (IsDiskFull(ex))
        {
            throw DiskFull(transfer, received, total, ex);
        }
    }

    /// <summary>The error for a non-success status: transient ones are retried, the rest say what to do.</summary>
    private static Exception StatusError(HttpResponseMessage response)
    {
        var code = (int)response.StatusCode;
        var status = string.IsNullOrWhiteSpace(response.ReasonPhrase) ? $"HTTP {code}" : $"HTTP {code} {response.ReasonPhrase}";
        var url = response.RequestMessage?.RequestUri;
        return response.StatusCode switch
        {
            HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden => new AgentHostException(ErrorKind.DownloadFailed,
                $"Downloading '{url}' failed: the server refused access ({status}); the model may be gated or private: accept its licence on its page and set HF_TOKEN to an access token that may read it."),
            HttpStatusCode.NotFound or HttpStatusCode.Gone => new AgentHostException(ErrorKind.DownloadFailed,
                $"Downloading '{url}' failed: the server has no such file ({status}); check the catalog entry's Url."),
            HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests => new RetryableException($"the server answered {status}", null),
            _ when code >= 500 => new RetryableException($"the server answered {status}", null),
            _ => new AgentHostException(ErrorKind.DownloadFailed, $"Downloading '{url}' failed: the server answered {status}."),
        };
    }

    /// <summary>The ETag (strong only) or Last-Modified that makes a later Range request safe with If-Range, or null.</summary>
    private static string? Validator(HttpResponseMessage response)
    {
        if (!response.Headers.AcceptRanges.Contains("bytes"))
            return null;
        if (response.Headers.ETag is { IsWeak: false } etag)
            return etag.ToString();
        return response.Content.Headers.LastModified is { } modified ? modified.ToString("R", System.Globalization.CultureInfo.InvariantCulture) : null;
    }

    /// <summary>Whether an I/O error means the disk (or the user's quota) is full.</summary>
    internal static bool IsDiskFull(IOException ex)
    {
        const int ENOSPC = 28, EDQUOT = 122, ERROR_HANDLE_DISK_FULL = 0x27, ERROR_DISK_FULL = 0x70;
        var code = ex.HResult;
        return OperatingSystem.IsWindows()
            ? (code & 0xFFFF) is ERROR_HANDLE_DISK_FULL or ERROR_DISK_FULL
            : code is ENOSPC or EDQUOT;
    }

    private static AgentHostException DiskFull(Transfer transfer, long received, long? total, Exception ex)
    {
        var needed = total is long length ? $"{length} bytes are needed, {received} were written" : $"{received} bytes were written";
        var kept = transfer.IsResumable ? "; the partial download is kept and resumes on the next try" : "";
        return new AgentHostException(ErrorKind.DownloadFailed,
            $"Downloading '{transfer.Url}' failed: not enough disk space in '{Path.GetDirectoryName(transfer.Part)}' ({needed}); free space and try again{kept}.", ex);
    }

    private static void CheckFreeSpace(Transfer transfer, long? remaining)
    {
        if (remaining is not long bytes || bytes <= 0)
            return;
        long available;
        try
        {
            available = new DriveInfo(Path.GetDirectoryName(transfer.Part)!).AvailableFreeSpace;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return; // unknown: the write itself reports a full disk
        }
        if (available < bytes)
        {
            throw new AgentHostException(ErrorKind.DownloadFailed,
                $"Downloading '{transfer.Url}' failed: not enough disk space in '{Path.GetDirectoryName(transfer.Part)}' ({bytes} more bytes are needed, {available} are free); free space and try again.");
        }
    }

    /// <summary>Opens <c>TARGET.lock</c> exclusively, waiting up to <see cref="LockTimeout"/>; says whether it had to wait.</summary>
    private async Task<(FileStream Lock, bool Waited)> AcquireLockAsync(Uri url, string target, CancellationToken cancellationToken)
    {
        var path = LockPath(target);
        var clock = Stopwatch.StartNew();
        var waited = false;
        while (true)
        {
            try
            {
                var stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, bufferSize: 1);
                // The holder deletes the lock file before it lets go: a lock on a file no longer at the path is stale.
                if (File.Exists(path))
                    return (stream, waited);
                await stream.DisposeAsync().ConfigureAwait(false);
                continue;
            }
            catch (IOException ex) when (!IsDiskFull(ex) && ex is not DirectoryNotFoundException and not PathTooLongException)
            {
                if (!waited)
                    LogWaiting(_logger, target, path);
                waited = true;
                if (clock.Elapsed >= LockTimeout)
                {
                    throw new AgentHostException(ErrorKind.DownloadFailed,
                        $"Downloading '{url}' failed: another process has been downloading '{target}' for over {LockTimeout.TotalSeconds:0.#} s (it holds '{path}'); try again when it has finished.", ex);
                }
                await Task.Delay(_lockPollInterval, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new AgentHostException(ErrorKind.DownloadFailed, $"Downloading '{url}' failed: cannot create the lock file '{path}' ({TrimPeriod(ex.Message)}).", ex);
            }
        }
    }

    /// <summary>The lock file of a download; while no process holds it, it records the validator of a resumable <c>.part</c>.</summary>
    internal static string LockPath(string target) => target + ".lock";

    /// <summary>The partial file of a download, resumed by the next download when its lock file records a validator.</summary>
    internal static string PartPath(string target) => target + ".part";

    /// <summary>The digest of <paramref name="target"/> when it is a usable model matching <paramref name="expected"/> (if given), else null.</summary>
    private static string? FinishedByAnother(string target, string? expected)
    {
        if (!File.Exists(target) || Problem(target) is not null)
            return null;
        var digest = ModelDigest.Compute(target);
        return expected is null || digest == expected ? digest : null;
    }

    /// <summary>A transient failure: the download is retried (resuming where it can).</summary>
    private sealed class RetryableException(string message, Exception? inner) : Exception(message, inner);

    /// <summary>The state of one download across its attempts; the validator lives in the (held) lock file.</summary>
    private sealed class Transfer(Uri url, string part, FileStream lockFile)
    {
        public Uri Url { get; } = url;

        public string Part { get; } = part;

        public long Received { get; set; }

        /// <summary>Whether the part on disk can be resumed by a later attempt or process.</summary>
        public bool IsResumable => File.Exists(Part) && ReadValidator() is not null;

        public string? ReadValidator()
        {
            lockFile.Position = 0;
            using var reader = new StreamReader(lockFile, leaveOpen: true);
            var text = reader.ReadToEnd().Trim();
            return text.Length == 0 ? null : text;
        }

        public void SaveValidator(string? validator)
        {
            lockFile.SetLength(0);
            if (validator is not null)
            {
                lockFile.Write(System.Text.Encoding.UTF8.GetBytes(validator));
                lockFile.Flush(flushToDisk: true);
            }
        }

        public void ForgetValidator() => SaveValidator(null);

        public void Discard()
        {
            try
            {
                File.Delete(Part);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Left behind without a validator: the next download starts it from zero.
            }
            ForgetValidator();
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
                PartialFiles.DeleteQuietly(part, _logger);
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

    private static string TrimPeriod(string message) => message.Trim().TrimEnd('.');

    [LoggerMessage(Level = LogLevel.Information, Message = "Downloading {Url} to {Path}")]
    private static partial void LogStarting(ILogger logger, Uri url, string path);

    [LoggerMessage(Level = LogLevel.Information, Message = "Downloaded {Url} to {Path} ({Bytes} bytes)")]
    private static partial void LogCompleted(ILogger logger, Uri url, string path, long bytes);

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "The catalog gives no SHA-256 for {Url}, so the download was not verified; its SHA-256 is {Sha256} (add it to the catalog entry to verify future downloads)")]
    private static partial void LogNoChecksum(ILogger logger, Uri url, string sha256);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Downloading {Url}: attempt {Attempt} of {MaxAttempts} failed ({Reason}); retrying in {DelaySeconds} s")]
    private static partial void LogRetrying(ILogger logger, Uri url, int attempt, int maxAttempts, string reason, double delaySeconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "Another process is downloading {Path} (it holds {LockPath}); waiting for it")]
    private static partial void LogWaiting(ILogger logger, string path, string lockPath);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Path} was downloaded by another process meanwhile; using it")]
    private static partial void LogFoundAfterWaiting(ILogger logger, string path);
}
