using System.Net;
using System.Security.Cryptography;
using AgentHost.Llama.Models;
using AgentHost.Llama.Tests.Support;
using Microsoft.Extensions.Logging;

namespace AgentHost.Llama.Tests;

public sealed class ModelDownloaderTests : IDisposable
{
    private static readonly TimeSpan _bound = TimeSpan.FromSeconds(30);
    private static readonly Lazy<byte[]> _modelBytes = new(() => File.ReadAllBytes(TestModels.Stories260K));
    private static readonly Lazy<string> _modelSha256 = new(() => Convert.ToHexStringLower(SHA256.HashData(_modelBytes.Value)));

    private readonly TempFolder _temp = new();
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

        await new ModelDownloader(_httpClient).DownloadAsync(server.Url("stories260K.gguf"), destination, _modelSha256.Value, progress, CancellationToken.None)
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

        await new ModelDownloader(_httpClient).DownloadAsync(server.Url("model.gguf"), destination, _modelSha256.Value.ToUpperInvariant(), null, CancellationToken.None)
            .WaitAsync(_bound);

        Assert.Equal(_modelBytes.Value, await File.ReadAllBytesAsync(destination));
        Assert.Equal(["model.gguf"], _temp.Files());
    }

    [Fact]
    public async Task Download_without_checksum_succeeds_and_logs_the_computed_hash_as_a_warning()
    {
        using var server = LoopbackHttpServer.Serving(_modelBytes.Value);
        var logger = new RecordingLogger();
        var destination = _temp.Combine("model.gguf");

        await new ModelDownloader(_httpClient, logger).DownloadAsync(server.Url("model.gguf"), destination, null, null, CancellationToken.None)
            .WaitAsync(_bound);

        Assert.Equal(_modelBytes.Value, await File.ReadAllBytesAsync(destination));
        Assert.Contains(logger.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains(_modelSha256.Value, StringComparison.Ordinal));
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
            new ModelDownloader(_httpClient).DownloadAsync(server.Url("model.gguf"), destination, null, null, CancellationToken.None).WaitAsync(_bound));

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

        await new ModelDownloader(_httpClient).DownloadAsync(server.Url("model.gguf"), destination, null, null, CancellationToken.None).WaitAsync(_bound);

        Assert.Equal(["model.gguf", $"model.gguf.{Environment.ProcessId}-999999.part"], _temp.Files().Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Checksum_mismatch_fails_and_leaves_no_file()
    {
        using var server = LoopbackHttpServer.Serving(_modelBytes.Value);
        var url = server.Url("model.gguf");
        var wrong = new string('0', 64);

        var ex = await Assert.ThrowsAsync<AgentHostException>(() =>
            new ModelDownloader(_httpClient).DownloadAsync(url, _temp.Combine("model.gguf"), wrong, null, CancellationToken.None).WaitAsync(_bound));

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
            new ModelDownloader(_httpClient).DownloadAsync(server.Url("model.gguf"), destination, new string('a', 64), null, CancellationToken.None).WaitAsync(_bound));

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
            new ModelDownloader(_httpClient).DownloadAsync(url, _temp.Combine("missing.gguf"), null, null, CancellationToken.None).WaitAsync(_bound));

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
            new ModelDownloader(_httpClient).DownloadAsync(url, _temp.Combine("model.gguf"), _modelSha256.Value, null, CancellationToken.None).WaitAsync(_bound));

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
            new ModelDownloader(_httpClient).DownloadAsync(url, _temp.Combine("model.gguf"), null, null, CancellationToken.None).WaitAsync(_bound));

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

        var download = new ModelDownloader(_httpClient).DownloadAsync(server.Url("model.gguf"), _temp.Combine("model.gguf"), null, progress, cts.Token);
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
        var downloader = new ModelDownloader(_httpClient) { StallTimeout = TimeSpan.FromMilliseconds(500) };

        var ex = await Assert.ThrowsAsync<AgentHostException>(() =>
            downloader.DownloadAsync(url, _temp.Combine("model.gguf"), null, null, CancellationToken.None).WaitAsync(_bound));

        Assert.Equal(ErrorKind.DownloadFailed, ex.Kind);
        Assert.Contains("no data arrived", ex.Message, StringComparison.Ordinal);
        Assert.Contains(url.ToString(), ex.Message, StringComparison.Ordinal);
        Assert.Empty(_temp.Files());
    }

    [Fact]
    public async Task Malformed_checksum_is_rejected_before_any_request()
    {
        using var server = LoopbackHttpServer.Serving(_modelBytes.Value);

        var ex = await Assert.ThrowsAsync<AgentHostException>(() =>
            new ModelDownloader(_httpClient).DownloadAsync(server.Url("model.gguf"), _temp.Combine("model.gguf"), "abc", null, CancellationToken.None).WaitAsync(_bound));

        Assert.Equal(ErrorKind.InvalidArgument, ex.Kind);
        Assert.Equal(0, server.RequestCount);
        Assert.Empty(_temp.Files());
    }

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
