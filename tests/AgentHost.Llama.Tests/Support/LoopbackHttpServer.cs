using System.Net;
using System.Net.Sockets;

namespace AgentHost.Llama.Tests.Support;

/// <summary>
/// A real HTTP server on 127.0.0.1 and a free port, for download tests. Each request runs the given handler;
/// <see cref="Dispose"/> releases waiting handlers and stops the listener.
/// </summary>
internal sealed class LoopbackHttpServer : IDisposable
{
    private readonly HttpListener _listener;
    private readonly Func<HttpListenerContext, CancellationToken, Task> _handler;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _acceptLoop;
    private int _requestCount;

    public LoopbackHttpServer(Func<HttpListenerContext, CancellationToken, Task> handler)
    {
        _handler = handler;
        (_listener, BaseAddress) = StartListener();
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    public Uri BaseAddress { get; }

    /// <summary>Requests received so far.</summary>
    public int RequestCount => Volatile.Read(ref _requestCount);

    public Uri Url(string path) => new(BaseAddress, path);

    /// <summary>A server that answers every request with <paramref name="content"/>.</summary>
    public static LoopbackHttpServer Serving(byte[] content) => new((context, _) => WriteAllAsync(context, content));

    /// <summary>A server that answers every request with <paramref name="status"/> and an empty body.</summary>
    public static LoopbackHttpServer Answering(HttpStatusCode status) => new((context, _) =>
    {
        context.Response.StatusCode = (int)status;
        context.Response.Close();
        return Task.CompletedTask;
    });

    public static async Task WriteAllAsync(HttpListenerContext context, byte[] content)
    {
        context.Response.ContentType = "application/octet-stream";
        context.Response.ContentLength64 = content.Length;
        await context.Response.OutputStream.WriteAsync(content);
        context.Response.Close();
    }

    /// <summary>A port nothing listens on (it was free a moment ago).</summary>
    public static int FreePort()
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return port;
    }

    public void Dispose()
    {
        _stopping.Cancel();
        try
        {
            _listener.Stop();
            _listener.Close();
        }
        catch (ObjectDisposedException)
        {
        }
        _acceptLoop.Wait(TimeSpan.FromSeconds(5));
        _stopping.Dispose();
    }

    private static (HttpListener Listener, Uri BaseAddress) StartListener()
    {
        for (var attempt = 1; ; attempt++)
        {
            var prefix = $"http://127.0.0.1:{FreePort()}/";
            var listener = new HttpListener();
            listener.Prefixes.Add(prefix);
            try
            {
                listener.Start();
                return (listener, new Uri(prefix));
            }
            catch (HttpListenerException) when (attempt < 10)
            {
                // Someone took the port between the probe and the start: try another.
                listener.Close();
            }
        }
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception) when (_stopping.IsCancellationRequested || !_listener.IsListening)
            {
                return;
            }
            Interlocked.Increment(ref _requestCount);
            _ = Task.Run(() => HandleAsync(context));
        }
    }

    private async Task HandleAsync(HttpListenerContext context)
    {
        try
        {
            await _handler(context, _stopping.Token);
        }
        catch (Exception)
        {
            // The client went away or the server is stopping; make sure the connection is closed.
            try
            {
                context.Response.Abort();
            }
            catch (Exception)
            {
            }
        }
    }
}
