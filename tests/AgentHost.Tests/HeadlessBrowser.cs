using System.Diagnostics;

namespace AgentHost.Tests;

/// <summary>
/// Opens a page in headless Chromium and returns the DOM after its scripts ran. A missing browser fails the test
/// loudly (.ci/run installs Debian's <c>chromium</c>); it never skips.
/// </summary>
internal static class HeadlessBrowser
{
    private static readonly string[] _names = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"];

    public static string Find()
    {
        foreach (var directory in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            foreach (var name in _names)
            {
                var path = Path.Combine(directory, name);
                if (File.Exists(path))
                    return path;
            }
        }
        throw new InvalidOperationException("No headless browser found (chromium); install it with 'apt-get install -y chromium' (.ci/run does).");
    }

    /// <summary>Loads <paramref name="htmlFile"/> and returns (exit code, DOM, stderr).</summary>
    public static async Task<(int ExitCode, string Dom, string Errors)> DumpDomAsync(string htmlFile, string profileFolder)
    {
        var start = new ProcessStartInfo(Find())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // Root in a container: no sandbox; a private profile so parallel runs never share one.
        foreach (var arg in new[] { "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0", $"--user-data-dir={profileFolder}", "--dump-dom", new Uri(htmlFile).AbsoluteUri })
            start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var dom = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"chromium did not render {htmlFile} in time.");
        }
        return (process.ExitCode, await dom, await errors);
    }

    /// <summary>Console and script errors Chromium logged (its own D-Bus and GPU noise in a container ignored).</summary>
    public static IReadOnlyList<string> PageErrors(string stderr)
        => stderr.Split('\n').Where(l => l.Contains("CONSOLE", StringComparison.Ordinal) || l.Contains("Uncaught", StringComparison.Ordinal)).ToList();
}
