using System.Net;
using System.Security.Cryptography;
using AgentHost.Llama.Models;
using AgentHost.Llama.Tests.Support;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;

namespace AgentHost.Llama.Tests.Models;

public sealed class ModelDownloaderTests : IDisposable
{
    private static readonly TimeSpan _bound = TimeSpan.FromSeconds(30);
    private static readonly Lazy<byte[]> _modelBytes = new(() => File.ReadAllBytes(TestModels.Stories260K));
    private static readonly Lazy<string> _modelSha256 = new(() => Convert.ToHexStringLower(SHA256.HashData(_modelBytes.Value)));

    private readonly TempFolder _temp = new();
    private static readonly TimeSpan _retryDelay = TimeSpan.FromMilliseconds(10);

    private readonly HttpClient _httpClient = new() { Timeout = _bound };

    public void Dispose()
    {
        _httpClient.Dispose();
        _temp.Dispose();
    }

    [Fact]
    public async Task Download_writes_an_identical_file_reports_progress_and_leaves_no_part_file()
    {
        using var server = LoopbackHttpServer.Serving(_modelBytes.Value);
        var destination = _temp.Combine("sub", "folder", "stories260K.gguf");
        var progress = new RecordingProgress<DownloadProgress>();

        await NewDownloader().DownloadAsync(server.Url("stories260K.gguf"), destination, _modelSha256.Value, progress, CancellationToken.None)
            .WaitAsync(_bound);

        Assert.Equal(_modelBytes.Value, await File.ReadAllBytesAsync(destination));
        Assert.Equal([Path.Combine("sub", "folder", "stories260K.gguf")], _temp.Files());
        Assert.Equal(1, server.RequestCount);

        var reports = progress.Reports;
        Assert.NotEmpty(reports);
        Assert.Equal(new DownloadProgress(_modelBytes.Value.Length, _modelBytes.Value.Length), reports[^1]);
        for (var i = 1; i < reports.Count; i++)
            Assert.True(reports[i].BytesReceived >= reports[i - 1].BytesReceived, "progress never goes backwards");
    }

    [Fact]
    public async Task Download_accepts_an_upper_case_checksum_and_replaces_an_existing_file()
    {
        using var server = LoopbackHttpServer.Serving(_modelBytes.Value);
        var destination = _temp.Combine("model.gguf");
        await File.WriteAllTextAsync(destination, "an older, different file");

        await NewDownloader().DownloadAsync(server.Url("model.gguf"), destination, _modelSha256.Value.ToUpperInvariant(), null, CancellationToken.None)
            .WaitAsync(_bound);

        Assert.Equal(_modelBytes.Value, await File.ReadAllBytesAsync(destination));
        Assert.Equal(["model.gguf"], _temp.Files());
    }

    [Fact]
    public async Task Download_without_checksum_succeeds_and_logs_the_computed_hash_as_a_warning()
    {
        using var server = LoopbackHttpServer.Serving(_modelBytes.Value);
        var logger = new FakeLogger();
        var destination = _temp.Combine("model.gguf");

        await new ModelDownloader(_httpClient, logger) { RetryDelay = _retryDelay }.DownloadAsync(server.Url("model.gguf"), destination, null, null, CancellationToken.None)
            .WaitAsync(_bound);

        Assert.Equal(_modelBytes.Value, await File.ReadAllBytesAsync(destination));
        Assert.Contains(logger.Collector.GetSnapshot(), e => e.Level == LogLevel.Warning && e.Message.Contains(_modelSha256.Value, StringComparison.Ordinal));
    }

    public static TheoryData<string> NotModels => new() { "html page", "truncated model", "tensor past the end" };

    [Theory]
    [MemberData(nameof(NotModels))]
    public async Task A_download_without_checksum_that_is_not_a_usable_gguf_is_deleted_with_a_clear_error(string what)
    {
        var model = _modelBytes.Value;
        var body = what switch
        {
            "html page" => "<html><body>Sign in to continue</body></html>"u8.ToArray(),
            "truncated model" => model[..(model.Length / 2)],
            _ => [.. model[..^1]], // the last tensor's data ends one byte past the file
        };
        using var server = LoopbackHttpServer.Serving(body);
        var destination = _temp.Combine("model.gguf");

        var ex = await Assert.ThrowsAsync<AgentHostException>(() =>
            NewDownloader().DownloadAsync(server.Url("model.gguf"), destination, null, null, CancellationToken.None).WaitAsync(_bound));

        Assert.Equal(ErrorKind.DownloadFailed, ex.Kind);
        Assert.Contains("is not a usable GGUF model", ex.Message, StringComparison.Ordinal);
        Assert.Empty(_temp.Files());
    }

    [Fact]
    public async Task Part_files_left_by_killed_downloads_are_cleaned_and_live_ones_kept()
    {
        using var server = LoopbackHttpServer.Serving(_modelBytes.Value);
        var destination = _temp.Combine("model.gguf");
        using var dead = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("true") { UseShellExecute = false })!;
        await dead.WaitForExitAsync();
        File.WriteAllText($"{destination}.{dead.Id}-1.part", "left by a killed download");
        File.WriteAllText($"{destination}.{Environment.ProcessId}-999999.part", "another download of this process");

        await NewDownloader().DownloadAsync(server.Url("model.gguf"), destination, null, null, CancellationToken.None).WaitAsync(_bound);

        Assert.Equal(["model.gguf", $"model.gguf.{Environment.ProcessId}-999999.part"], _temp.Files().Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Checksum_mismatch_fails_and_leaves_no_file()
    {
        using var server = LoopbackHttpServer.Serving(_modelBytes.Value);
        var url = server.Url("model.gguf");
        var wrong = new string('0', 64);

        var ex = await Assert.ThrowsAsync<AgentHostException>(() =>
            NewDownloader().DownloadAsync(url, _temp.Combine("model.gguf"), wrong, null, CancellationToken.None).WaitAsync(_bound));

        Assert.Equal(ErrorKind.DownloadFailed, ex.Kind);
        Assert.Contains(url.ToString(), ex.Message, StringComparison.Ordinal);
        Assert.Contains("SHA-256", ex.Message, StringComparison.Ordinal);
        Assert.Contains(_modelSha256.Value, ex.Message, StringComparison.Ordinal);
        Assert.Empty(_temp.Files());
    }

    [Fact]
    public async Task Failed_download_leaves_an_existing_destination_untouched()
    {
        using var server = LoopbackHttpServer.Serving(_modelBytes.Value);
        var destination = _temp.Combine("model.gguf");
        await File.WriteAllTextAsync(destination, "the file that was there");

        var ex = await Assert.ThrowsAsync<AgentHostException>(() =>
            NewDownloader().DownloadAsync(server.Url("model.gguf"), destination, new string('a', 64), null, CancellationToken.None).WaitAsync(_bound));

        Assert.Equal(ErrorKind.DownloadFailed, ex.Kind);
        Assert.Equal("the file that was there", await File.ReadAllTextAsync(destination));
        Assert.Equal(["model.gguf"], _temp.Files());
    }

    [Fact]
    public async Task Http_404_fails_with_the_status_in_the_message()
    {
        using var server = LoopbackHttpServer.Answering(HttpStatusCode.NotFound);
        var url = server.Url("missing.gguf");

        var ex = await Assert.ThrowsAsync<AgentHostException>(() =>
            NewDownloader().DownloadAsync(url, _temp.Combine("missing.gguf"), null, null, CancellationToken.None).WaitAsync(_bound));

        Assert.Equal(ErrorKind.DownloadFailed, ex.Kind);
        Assert.Contains("404", ex.Message, StringComparison.Ordinal);
        Assert.Contains(url.ToString(), ex.Message, StringComparison.Ordinal);
        Assert.Empty(_temp.Files());
    }

    [Fact]
    public async Task Connection_closed_half_way_fails_and_leaves_no_file()
    {
        var bytes = _modelBytes.Value;
        using var server = new LoopbackHttpServer(async (context, _) =>
        {
            context.Response.ContentLength64 = bytes.Length;
            await context.Response.OutputStream.WriteAsync(bytes.AsMemory(0, bytes.Length / 2));
            await context.Response.OutputStream.FlushAsync();
            context.Response.Abort();
        });
        var url = server.Url("model.gguf");

        var ex = await Assert.ThrowsAsync<AgentHostException>(() =>
            NewDownloader().DownloadAsync(url, _temp.Combine("model.gguf"), _modelSha256.Value, null, CancellationToken.None).WaitAsync(_bound));

        Assert.Equal(ErrorKind.DownloadFailed, ex.Kind);
        Assert.Contains(url.ToString(), ex.Message, StringComparison.Ordinal);
        Assert.Contains($"of {bytes.Length} bytes", ex.Message, StringComparison.Ordinal);
        Assert.Empty(_temp.Files());
    }

    [Fact]
    public async Task Connection_refused_fails_with_a_clear_message()
    {
        var url = new Uri($"http://127.0.0.1:{LoopbackHttpServer.FreePort()}/model.gguf");

        var ex = await Assert.ThrowsAsync<AgentHostException>(() =>
            NewDownloader().DownloadAsync(url, _temp.Combine("model.gguf"), null, null, CancellationToken.None).WaitAsync(_bound));

        Assert.Equal(ErrorKind.DownloadFailed, ex.Kind);
        Assert.Equal($"Downloading '{url}' failed: the connection was refused.", ex.Message);
        Assert.Empty(_temp.Files());
    }

    [Fact]
    public async Task Cancellation_throws_OperationCanceledException_and_leaves_no_file()
    {
        var halfSent = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var server = HalfThenWait(halfSent);
        using var cts = new CancellationTokenSource();
        var progress = new RecordingProgress<DownloadProgress>();

        var download = NewDownloader().DownloadAsync(server.Url("model.gguf"), _temp.Combine("model.gguf"), null, progress, cts.Token);
        await halfSent.Task.WaitAsync(_bound);
        // Wait until the client has written bytes, so cancellation hits the streaming phase with a .part file on disk.
        await WaitUntilAsync(() => _temp.Files().Any(f => f.EndsWith(".part", StringComparison.Ordinal)));
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => download.WaitAsync(_bound));
        Assert.Empty(_temp.Files());
    }

    [Fact]
    public async Task Stalled_server_fails_after_the_stall_timeout_and_leaves_no_file()
    {
        var halfSent = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var server = HalfThenWait(halfSent);
        var url = server.Url("model.gguf");
        var downloader = new ModelDownloader(_httpClient) { StallTimeout = TimeSpan.FromMilliseconds(500), MaxAttempts = 3, RetryDelay = TimeSpan.FromMilliseconds(10) };

        var ex = await Assert.ThrowsAsync<AgentHostException>(() =>
            downloader.DownloadAsync(url, _temp.Combine("model.gguf"), null, null, CancellationToken.None).WaitAsync(_bound));

        Assert.Equal(ErrorKind.DownloadFailed, ex.Kind);
        Assert.Contains("no data arrived", ex.Message, StringComparison.Ordinal);
        Assert.Contains("after 3 attempts", ex.Message, StringComparison.Ordinal);
        Assert.Contains(url.ToString(), ex.Message, StringComparison.Ordinal);
        Assert.Equal(3, server.RequestCount);
        Assert.Empty(_temp.Files());
    }

    [Fact]
    public async Task A_server_that_never_answers_fails_after_the_bounded_attempts()
    {
        using var silent = new LoopbackHttpServer((_, stopping) => Task.Delay(_bound, stopping));
        using var impatient = new HttpClient { Timeout = TimeSpan.FromMilliseconds(300) };
        var downloader = new ModelDownloader(impatient) { MaxAttempts = 2, RetryDelay = _retryDelay };

        var ex = await Assert.ThrowsAsync<AgentHostException>(() =>
            downloader.DownloadAsync(silent.Url("model.gguf"), _temp.Combine("model.gguf"), null, null, CancellationToken.None).WaitAsync(_bound));

        Assert.Equal(ErrorKind.DownloadFailed, ex.Kind);
        Assert.Contains("after 2 attempts: the server did not answer within 0.3 s", ex.Message, StringComparison.Ordinal);
        Assert.Equal(2, silent.RequestCount);
        Assert.Empty(_temp.Files());
    }

    [Fact]
    public async Task Malformed_checksum_is_rejected_before_any_request()
    {
        using var server = LoopbackHttpServer.Serving(_modelBytes.Value);

        var ex = await Assert.ThrowsAsync<AgentHostException>(() =>
            NewDownloader().DownloadAsync(server.Url("model.gguf"), _temp.Combine("model.gguf"), "abc", null, CancellationToken.None).WaitAsync(_bound));

        Assert.Equal(ErrorKind.InvalidArgument, ex.Kind);
        Assert.Equal(0, server.RequestCount);
        Assert.Empty(_temp.Files());
    }

    [Fact]
    public async Task A_dropped_connection_is_resumed_with_a_range_request_guarded_by_the_etag()
    {
        var bytes = _modelBytes.Value;
        var requests = new System.Collections.Concurrent.ConcurrentQueue<(string? Range, string? IfRange)>();
        using var server = RangeServer(requests, dropFirstAt: bytes.Length / 3, etag: "\"v1\"");
        var destination = _temp.Combine("model.gguf");

        var digest = await NewDownloader().DownloadAsync(server.Url("model.gguf"), destination, _modelSha256.Value, null, CancellationToken.None).WaitAsync(_bound);

        Assert.Equal(_modelSha256.Value, digest);
        Assert.Equal(bytes, await File.ReadAllBytesAsync(destination));
        Assert.Equal([(null, null), ($"bytes={bytes.Length / 3}-", "\"v1\"")], requests.ToArray());
        Assert.Equal(["model.gguf"], _temp.Files());
    }

    [Fact]
    public async Task A_dropped_connection_on_a_server_without_range_support_restarts_from_zero()
    {
        var bytes = _modelBytes.Value;
        var requests = new System.Collections.Concurrent.ConcurrentQueue<(string? Range, string? IfRange)>();
        using var server = RangeServer(requests, dropFirstAt: bytes.Length / 3, etag: null);
        var destination = _temp.Combine("model.gguf");

        var digest = await NewDownloader().DownloadAsync(server.Url("model.gguf"), destination, null, null, CancellationToken.None).WaitAsync(_bound);

        Assert.Equal(_modelSha256.Value, digest);
        Assert.Equal(bytes, await File.ReadAllBytesAsync(destination));
        Assert.Equal([(null, null), (null, null)], requests.ToArray());
    }

    [Fact]
    public async Task A_part_left_by_an_interrupted_download_whose_lock_is_free_is_resumed_not_deleted()
    {
        var bytes = _modelBytes.Value;
        var destination = _temp.Combine("model.gguf");
        await File.WriteAllBytesAsync(destination + ".part", bytes[..1000]);
        await File.WriteAllTextAsync(destination + ".lock", "\"v1\"");
        var requests = new System.Collections.Concurrent.ConcurrentQueue<(string? Range, string? IfRange)>();
        using var server = RangeServer(requests, dropFirstAt: null, etag: "\"v1\"");

        var digest = await NewDownloader().DownloadAsync(server.Url("model.gguf"), destination, _modelSha256.Value, null, CancellationToken.None).WaitAsync(_bound);

        Assert.Equal(_modelSha256.Value, digest);
        Assert.Equal(bytes, await File.ReadAllBytesAsync(destination));
        Assert.Equal([("bytes=1000-", "\"v1\"")], requests.ToArray());
        Assert.Equal(["model.gguf"], _temp.Files());
    }

    [Fact]
    public async Task A_part_whose_file_changed_on_the_server_is_downloaded_again_from_zero()
    {
        var bytes = _modelBytes.Value;
        var destination = _temp.Combine("model.gguf");
        await File.WriteAllBytesAsync(destination + ".part", new byte[1000]);
        await File.WriteAllTextAsync(destination + ".lock", "\"old\"");
        var requests = new System.Collections.Concurrent.ConcurrentQueue<(string? Range, string? IfRange)>();
        using var server = RangeServer(requests, dropFirstAt: null, etag: "\"v2\"");

        await NewDownloader().DownloadAsync(server.Url("model.gguf"), destination, _modelSha256.Value, null, CancellationToken.None).WaitAsync(_bound);

        Assert.Equal(bytes, await File.ReadAllBytesAsync(destination));
        Assert.Equal([("bytes=1000-", "\"old\"")], requests.ToArray()); // If-Range failed: the server sent the whole file
    }

    [Fact]
    public async Task A_failure_on_a_range_capable_server_keeps_the_part_and_the_next_download_resumes_it()
    {
        var bytes = _modelBytes.Value;
        var requests = new System.Collections.Concurrent.ConcurrentQueue<(string? Range, string? IfRange)>();
        using var dropping = RangeServer(requests, dropFirstAt: bytes.Length / 2, etag: "\"v1\"", dropAlways: true);
        var destination = _temp.Combine("model.gguf");
        var once = new ModelDownloader(_httpClient) { MaxAttempts = 1 };

        var ex = await Assert.ThrowsAsync<AgentHostException>(() =>
            once.DownloadAsync(dropping.Url("model.gguf"), destination, _modelSha256.Value, null, CancellationToken.None).WaitAsync(_bound));
        Assert.Contains($"{bytes.Length / 2} of {bytes.Length} bytes", ex.Message, StringComparison.Ordinal);
        Assert.Equal(bytes.Length / 2, new FileInfo(destination + ".part").Length);
        Assert.Equal(["model.gguf.lock", "model.gguf.part"], _temp.Files()); // the lock file records the ETag to resume with
        Assert.Equal("\"v1\"", await File.ReadAllTextAsync(destination + ".lock"));

        using var healthy = RangeServer(requests, dropFirstAt: null, etag: "\"v1\"");
        await NewDownloader().DownloadAsync(healthy.Url("model.gguf"), destination, _modelSha256.Value, null, CancellationToken.None).WaitAsync(_bound);
        Assert.Equal(bytes, await File.ReadAllBytesAsync(destination));
        Assert.Equal(($"bytes={bytes.Length / 2}-", "\"v1\""), requests.ToArray()[^1]);
        Assert.Equal(["model.gguf"], _temp.Files());
    }

    [Fact]
    public async Task A_transient_server_error_is_retried()
    {
        var bytes = _modelBytes.Value;
        var calls = 0;
        using var server = new LoopbackHttpServer(async (context, _) =>
        {
            if (Interlocked.Increment(ref calls) == 1)
            {
                context.Response.StatusCode = 503;
                context.Response.Close();
                return;
            }
            await LoopbackHttpServer.WriteAllAsync(context, bytes);
        });

        await NewDownloader().DownloadAsync(server.Url("model.gguf"), _temp.Combine("model.gguf"), _modelSha256.Value, null, CancellationToken.None).WaitAsync(_bound);

        Assert.Equal(2, server.RequestCount);
        Assert.Equal(["model.gguf"], _temp.Files());
    }

    [Fact]
    public async Task A_persistent_server_error_fails_after_the_bounded_attempts()
    {
        using var server = LoopbackHttpServer.Answering(HttpStatusCode.BadGateway);
        var downloader = new ModelDownloader(_httpClient) { MaxAttempts = 3, RetryDelay = _retryDelay };

        var ex = await Assert.ThrowsAsync<AgentHostException>(() =>
            downloader.DownloadAsync(server.Url("model.gguf"), _temp.Combine("model.gguf"), null, null, CancellationToken.None).WaitAsync(_bound));

        Assert.Equal(ErrorKind.DownloadFailed, ex.Kind);
        Assert.Contains("after 3 attempts: the server answered HTTP 502", ex.Message, StringComparison.Ordinal);
        Assert.Equal(3, server.RequestCount);
        Assert.Empty(_temp.Files());
    }

    [Theory]
    [InlineData(HttpStatusCode.Unauthorized)]
    [InlineData(HttpStatusCode.Forbidden)]
    public async Task Access_denied_is_one_clear_error_that_names_HF_TOKEN_and_is_not_retried(HttpStatusCode status)
    {
        using var server = LoopbackHttpServer.Answering(status);
        var url = server.Url("gated.gguf");

        var ex = await Assert.ThrowsAsync<AgentHostException>(() =>
            NewDownloader().DownloadAsync(url, _temp.Combine("gated.gguf"), null, null, CancellationToken.None).WaitAsync(_bound));

        Assert.Equal(ErrorKind.DownloadFailed, ex.Kind);
        Assert.StartsWith($"Downloading '{url}' failed: the server refused access (HTTP {(int)status}", ex.Message, StringComparison.Ordinal);
        Assert.Contains("HF_TOKEN", ex.Message, StringComparison.Ordinal);
        Assert.Equal(1, server.RequestCount);
        Assert.Empty(_temp.Files());
    }

    [Fact]
    public async Task Two_concurrent_downloads_of_one_file_both_succeed_with_one_transfer()
    {
        var bytes = _modelBytes.Value;
        using var server = new LoopbackHttpServer(async (context, stopping) =>
        {
            context.Response.ContentLength64 = bytes.Length;
            for (var offset = 0; offset < bytes.Length; offset += bytes.Length / 8 + 1)
            {
                await context.Response.OutputStream.WriteAsync(bytes.AsMemory(offset, Math.Min(bytes.Length / 8 + 1, bytes.Length - offset)), stopping);
                await Task.Delay(50, stopping);
            }
            context.Response.Close();
        });
        var destination = _temp.Combine("model.gguf");

        var first = NewDownloader().DownloadAsync(server.Url("model.gguf"), destination, null, null, CancellationToken.None);
        var second = NewDownloader().DownloadAsync(server.Url("model.gguf"), destination, null, null, CancellationToken.None);
        var digests = await Task.WhenAll(first, second).WaitAsync(_bound);

        Assert.Equal([_modelSha256.Value, _modelSha256.Value], digests);
        Assert.Equal(1, server.RequestCount);
        Assert.Equal(bytes, await File.ReadAllBytesAsync(destination));
        Assert.Equal(["model.gguf"], _temp.Files());
    }

    [Fact]
    public async Task A_download_held_by_another_process_past_the_lock_timeout_fails_clearly()
    {
        using var server = LoopbackHttpServer.Serving(_modelBytes.Value);
        var destination = _temp.Combine("model.gguf");
        await using var held = new FileStream(destination + ".lock", FileMode.Create, FileAccess.ReadWrite, FileShare.None);
        var downloader = new ModelDownloader(_httpClient) { LockTimeout = TimeSpan.FromMilliseconds(300) };

        var ex = await Assert.ThrowsAsync<AgentHostException>(() =>
            downloader.DownloadAsync(server.Url("model.gguf"), destination, null, null, CancellationToken.None).WaitAsync(_bound));

        Assert.Equal(ErrorKind.DownloadFailed, ex.Kind);
        Assert.Contains("another process has been downloading", ex.Message, StringComparison.Ordinal);
        Assert.Equal(0, server.RequestCount);
    }

    [Fact]
    public void A_write_to_a_full_disk_is_recognised_as_a_full_disk()
    {
        using var full = new FileStream("/dev/full", FileMode.Open, FileAccess.Write, FileShare.ReadWrite, bufferSize: 1);

        var ex = Assert.ThrowsAny<IOException>(() => full.Write(new byte[4096]));

        Assert.True(ModelDownloader.IsDiskFull(ex), $"HResult {ex.HResult}: {ex.Message}");
        Assert.False(ModelDownloader.IsDiskFull(new FileNotFoundException("not a full disk")));
    }

    /// <summary>
    /// Serves the model honouring <c>Range</c> with <c>If-Range</c> when <paramref name="etag"/> is set (else ignoring
    /// both, like a server without range support); the first request (or every one) breaks off after <paramref name="dropFirstAt"/> bytes.
    /// </summary>
    private static LoopbackHttpServer RangeServer(System.Collections.Concurrent.ConcurrentQueue<(string? Range, string? IfRange)> requests, int? dropFirstAt, string? etag, bool dropAlways = false)
    {
        var bytes = _modelBytes.Value;
        var calls = 0;
        return new LoopbackHttpServer(async (context, stopping) =>
        {
            var range = context.Request.Headers["Range"];
            var ifRange = context.Request.Headers["If-Range"];
            requests.Enqueue((range, ifRange));
            var call = Interlocked.Increment(ref calls);
            var from = 0;
            if (etag is not null)
            {
                context.Response.AddHeader("Accept-Ranges", "bytes");
                context.Response.AddHeader("ETag", etag);
                if (range is not null && ifRange == etag)
                {
                    from = int.Parse(range["bytes=".Length..^1], System.Globalization.CultureInfo.InvariantCulture);
                    context.Response.StatusCode = 206;
                    context.Response.AddHeader("Content-Range", $"bytes {from}-{bytes.Length - 1}/{bytes.Length}");
                }
            }
            context.Response.ContentLength64 = bytes.Length - from;
            var end = dropFirstAt is int drop && (call == 1 || dropAlways) ? Math.Max(drop, from) : bytes.Length;
            await context.Response.OutputStream.WriteAsync(bytes.AsMemory(from, end - from), stopping);
            if (end < bytes.Length)
            {
                await context.Response.OutputStream.FlushAsync(stopping);
                context.Response.Abort();
                return;
            }
            context.Response.Close();
        });
    }

    private ModelDownloader NewDownloader() => new(_httpClient) { RetryDelay = _retryDelay };

    /// <summary>Announces the whole model, sends half, then waits until the server stops (bounded), then aborts.</summary>
    private static LoopbackHttpServer HalfThenWait(TaskCompletionSource halfSent)
    {
        var bytes = _modelBytes.Value;
        return new LoopbackHttpServer(async (context, stopping) =>
        {
            context.Response.ContentLength64 = bytes.Length;
            await context.Response.OutputStream.WriteAsync(bytes.AsMemory(0, bytes.Length / 2), stopping);
            await context.Response.OutputStream.FlushAsync(stopping);
            halfSent.TrySetResult();
            try
            {
                await Task.Delay(_bound, stopping);
            }
            finally
            {
                context.Response.Abort();
            }
        });
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + _bound;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException("The condition did not become true in time.");
            await Task.Delay(10);
        }
    }
}
