using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;

namespace AgentHost.Llama.Tests.Support;

/// <summary>
/// A stand-in for the Hugging Face Hub on loopback: <c>GET /api/models/OWNER/REPO</c> answers the repository's file list
/// (<c>siblings[].rfilename</c>), <c>GET /OWNER/REPO/resolve/main/FILE</c> the file's bytes; anything else is 404.
/// Every request's path and Authorization header are recorded.
/// </summary>
internal sealed class FakeHuggingFace : IDisposable
{
    private readonly LoopbackHttpServer _server;
    private readonly ConcurrentQueue<(string Path, string? Authorization)> _requests = new();

    /// <param name="repositories">Each repository (OWNER/REPO) with its files and their bytes.</param>
    /// <param name="status">When set, every request gets this status instead (a gated repository: 401).</param>
    public FakeHuggingFace(IReadOnlyDictionary<string, IReadOnlyDictionary<string, byte[]>> repositories, HttpStatusCode? status = null)
    {
        _server = new LoopbackHttpServer((context, _) => AnswerAsync(context, repositories, status));
    }

    public Uri Endpoint => _server.BaseAddress;

    public IReadOnlyList<(string Path, string? Authorization)> Requests => [.. _requests];

    public int FileListRequests => Requests.Count(r => r.Path.StartsWith("/api/models/", StringComparison.Ordinal));

    public int FileRequests => Requests.Count(r => r.Path.Contains("/resolve/main/", StringComparison.Ordinal));

    public void Dispose() => _server.Dispose();

    private Task AnswerAsync(HttpListenerContext context, IReadOnlyDictionary<string, IReadOnlyDictionary<string, byte[]>> repositories, HttpStatusCode? status)
    {
        var path = Uri.UnescapeDataString(context.Request.Url!.AbsolutePath);
        _requests.Enqueue((path, context.Request.Headers["Authorization"]));
        if (status is { } refused)
            return Answer(context, refused);

        if (path.StartsWith("/api/models/", StringComparison.Ordinal)
            && repositories.TryGetValue(path["/api/models/".Length..], out var listed))
        {
            var json = JsonSerializer.SerializeToUtf8Bytes(new { id = path["/api/models/".Length..], siblings = listed.Keys.Select(f => new { rfilename = f }) });
            return LoopbackHttpServer.WriteAllAsync(context, json);
        }
        foreach (var (repository, files) in repositories)
        {
            var prefix = $"/{repository}/resolve/main/";
            if (path.StartsWith(prefix, StringComparison.Ordinal) && files.TryGetValue(path[prefix.Length..], out var bytes))
                return LoopbackHttpServer.WriteAllAsync(context, bytes);
        }
        return Answer(context, HttpStatusCode.NotFound);
    }

    private static Task Answer(HttpListenerContext context, HttpStatusCode status)
    {
        context.Response.StatusCode = (int)status;
        context.Response.Close();
        return Task.CompletedTask;
    }
}
