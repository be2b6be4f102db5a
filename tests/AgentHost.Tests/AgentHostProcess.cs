using System.Diagnostics;

namespace AgentHost.Tests;

/// <summary>Runs the real AgentHost executable (built next to the tests) and captures what it prints.</summary>
internal static class AgentHostProcess
{
    public sealed record Result(int ExitCode, string StdOut, string StdErr);

    public static string ModelsDirectory => Llama.Tests.TestModels.Directory;

    public static async Task<Result> RunAsync(IReadOnlyList<string> args, IReadOnlyDictionary<string, string>? environment = null, TimeSpan? timeout = null, string? input = null)
    {
        using var process = Process.Start(StartInfo(args, environment))!;
        if (input is not null)
            await process.StandardInput.WriteAsync(input);
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(3));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"agenthost {string.Join(' ', args)} did not finish in time.");
        }
        return new Result(process.ExitCode, await stdout, await stderr);
    }

    /// <summary>How the tests start the executable: isolated from the user's cache and the network, one compute thread.</summary>
    public static ProcessStartInfo StartInfo(IReadOnlyList<string> args, IReadOnlyDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetTempPath(),
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "AgentHost.dll"));
        foreach (var arg in args)
            start.ArgumentList.Add(arg);
        start.Environment["AGENTHOST_MODELS_DIR"] = ModelsDirectory;
        // Never touch the real user cache or the network from tests.
        start.Environment["AGENTHOST_AgentHost__CacheDir"] = Path.Combine(Path.GetTempPath(), "agenthost-cli-tests-cache");
        start.Environment["AGENTHOST_AgentHost__AllowDownload"] = "false";
        // One compute thread: test processes run beside other tests on a 2-core machine (see TestModels.Threads).
        foreach (var model in new[] { "stories260k", "tinystories656k" })
        {
            start.Environment[$"AGENTHOST_AgentHost__Models__{model}__Threads"] = "1";
            start.Environment[$"AGENTHOST_AgentHost__Models__{model}__BatchThreads"] = "1";
        }
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
            start.Environment[key] = value;
        return start;
    }
}

/// <summary>A real <c>serve</c> process on a free loopback port, started until it says it is serving; its stderr is kept.</summary>
internal sealed class ServeProcess : IDisposable
{
    private readonly System.Text.StringBuilder _stderr = new();

    private ServeProcess(Process process, int port)
    {
        Process = process;
        Port = port;
    }

    public Process Process { get; }

    public int Port { get; }

    public string StdErr
    {
        get
        {
            lock (_stderr)
                return _stderr.ToString();
        }
    }

    public static async Task<ServeProcess> StartAsync(IReadOnlyDictionary<string, string>? environment = null)
    {
        int port;
        using (var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
        }
        var serve = new ServeProcess(Process.Start(AgentHostProcess.StartInfo(["serve", "--urls", $"http://127.0.0.1:{port}"], environment))!, port);
        var serving = new TaskCompletionSource();
        serve.Process.ErrorDataReceived += (_, e) =>
        {
            lock (serve._stderr)
                serve._stderr.AppendLine(e.Data);
            if (e.Data?.StartsWith("serving", StringComparison.Ordinal) == true)
                serving.TrySetResult();
        };
        serve.Process.OutputDataReceived += (_, _) => { };
        serve.Process.BeginErrorReadLine();
        serve.Process.BeginOutputReadLine();
        try
        {
            await serving.Task.WaitAsync(TimeSpan.FromSeconds(90));
        }
        catch
        {
            serve.Dispose();
            throw;
        }
        return serve;
    }

    public void Dispose()
    {
        if (!Process.HasExited)
            Process.Kill(entireProcessTree: true);
        Process.Dispose();
    }
}
