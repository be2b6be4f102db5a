using System.Diagnostics;

namespace AgentHost.Tests;

/// <summary>
/// Opens a page in headless Chromium and returns the DOM after its scripts ran. A missing browser is installed
/// from Debian's packages when the tests run as root (a fresh machine running the README's test command);
/// otherwise the test fails loudly with the command to run. It never skips.
/// </summary>
internal static class HeadlessBrowser
{
    private static readonly string[] _names = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"];
    private static readonly Lazy<string> _browser = new(FindOrInstall);

    public static string Find() => _browser.Value;

    private static string FindOrInstall()
    {
        if (Search() is { } found)
            return found;
        const string apt = "/usr/bin/apt-get";
        if (!Environment.IsPrivilegedProcess || !File.Exists(apt))
            throw new InvalidOperationException("No headless browser found (chromium); install it with 'apt-get install -y chromium'.");
        Console.Error.WriteLine("HeadlessBrowser: installing Debian's chromium for the HTML report tests...");
        RunOrThrow(apt, "update", "-qq");
        RunOrThrow(apt, "install", "-y", "-qq", "chromium");
        return Search() ?? throw new InvalidOperationException("apt-get installed chromium, but no chromium is on PATH.");
    }

    private static string? Search()
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
        return null;
    }

    private static void RunOrThrow(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        start.Environment["DEBIAN_FRONTEND"] = "noninteractive";
        foreach (var arg in args)
            start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(10)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish within 10 minutes.");
        }
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed ({process.ExitCode}): {errors.Result}{output.Result}");
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
