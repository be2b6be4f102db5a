using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace AgentHost.Tests;

/// <summary>
/// Headless Chromium (<see cref="HeadlessBrowser.Find"/>: Debian's, installed when missing) driven through the Chrome
/// DevTools Protocol over its WebSocket: navigate, run script in the page, move the mouse, type, take screenshots.
/// Script errors and console errors of the page are collected in <see cref="PageErrors"/>.
/// </summary>
internal sealed class DevToolsBrowser : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ClientWebSocket _socket = new();
    private readonly Dictionary<int, TaskCompletionSource<JsonElement>> _pending = [];
    private readonly List<string> _errors = [];
    private readonly CancellationTokenSource _stop = new();
    private Task _receiving = Task.CompletedTask;
    private int _nextId;

    private DevToolsBrowser(Process process) => _process = process;

    /// <summary>Console errors and uncaught exceptions the page reported.</summary>
    public IReadOnlyList<string> PageErrors
    {
        get
        {
            lock (_errors)
                return [.. _errors];
        }
    }

    public static async Task<DevToolsBrowser> StartAsync(string profileFolder)
    {
        Directory.CreateDirectory(profileFolder);
        var start = new ProcessStartInfo(HeadlessBrowser.Find()) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        // Root in a container: no sandbox; a private profile so parallel runs never share one; port 0: Chromium picks one
        // and writes it to DevToolsActivePort in the profile.
        foreach (var arg in new[] { "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--remote-debugging-port=0", $"--user-data-dir={profileFolder}", "--window-size=1280,900", "about:blank" })
            start.ArgumentList.Add(arg);
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var browser = new DevToolsBrowser(process);
        try
        {
            await browser.ConnectAsync(Path.Combine(profileFolder, "DevToolsActivePort"));
            return browser;
        }
        catch
        {
            await browser.DisposeAsync();
            throw;
        }
    }

    private async Task ConnectAsync(string portFile)
    {
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (!File.Exists(portFile) || File.ReadAllLines(portFile).Length < 2)
        {
            if (_process.HasExited)
                throw new InvalidOperationException($"chromium exited ({_process.ExitCode}) before it listened for DevTools.");
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException("chromium did not open its DevTools port in time.");
            await Task.Delay(100);
        }
        var port = int.Parse(File.ReadAllLines(portFile)[0], System.Globalization.CultureInfo.InvariantCulture);
        using var http = new HttpClient();
        var targets = JsonDocument.Parse(await http.GetStringAsync($"http://127.0.0.1:{port}/json/list")).RootElement;
        var page = targets.EnumerateArray().First(t => t.GetProperty("type").GetString() == "page");
        await _socket.ConnectAsync(new Uri(page.GetProperty("webSocketDebuggerUrl").GetString()!), _stop.Token);
        _receiving = Task.Run(ReceiveAsync);
        await SendAsync("Page.enable");
        await SendAsync("Runtime.enable");
    }

    private async Task ReceiveAsync()
    {
        var buffer = new byte[1 << 16];
        var message = new MemoryStream();
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var part = await _socket.ReceiveAsync(buffer, _stop.Token);
                if (part.MessageType == WebSocketMessageType.Close)
                    break;
                message.Write(buffer, 0, part.Count);
                if (!part.EndOfMessage)
                    continue;
                var root = JsonDocument.Parse(message.ToArray()).RootElement.Clone();
                message.SetLength(0);
                if (root.TryGetProperty("id", out var id))
                {
                    TaskCompletionSource<JsonElement>? waiting;
                    lock (_pending)
                        _pending.Remove(id.GetInt32(), out waiting);
                    if (root.TryGetProperty("error", out var error))
                        waiting?.TrySetException(new InvalidOperationException($"DevTools: {error}"));
                    else
                        waiting?.TrySetResult(root.GetProperty("result"));
                }
                else if (root.GetProperty("method").GetString() is "Runtime.exceptionThrown" or "Runtime.consoleAPICalled" && IsError(root.GetProperty("params")))
                {
                    lock (_errors)
                        _errors.Add(root.GetProperty("params").ToString());
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException)
        {
        }
        finally
        {
            lock (_pending)
            {
                foreach (var waiting in _pending.Values)
                    waiting.TrySetException(new InvalidOperationException("The DevTools connection closed."));
            }
        }
    }

    private static bool IsError(JsonElement parameters)
        => parameters.TryGetProperty("exceptionDetails", out _) || parameters.TryGetProperty("type", out var type) && type.GetString() == "error";

    public async Task<JsonElement> SendAsync(string method, object? parameters = null)
    {
        var id = Interlocked.Increment(ref _nextId);
        var waiting = new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_pending)
            _pending[id] = waiting;
        var message = new JsonObject { ["id"] = id, ["method"] = method, ["params"] = parameters is null ? new JsonObject() : JsonSerializer.SerializeToNode(parameters) };
        await _socket.SendAsync(Encoding.UTF8.GetBytes(message.ToJsonString()), WebSocketMessageType.Text, true, _stop.Token);
        return await waiting.Task.WaitAsync(TimeSpan.FromMinutes(2));
    }

    /// <summary>Opens <paramref name="url"/> and waits until the document and its deferred scripts have loaded.</summary>
    public async Task NavigateAsync(string url)
    {
        // A mark on the old document: the wait below must see the new one, not the old one still complete.
        await EvaluateAsync("window.__leaving = true");
        await SendAsync("Page.navigate", new { url });
        await WaitForAsync("!window.__leaving && document.readyState === 'complete' && location.href.startsWith(" + JsonSerializer.Serialize(url) + ")");
    }

    /// <summary>The value of <paramref name="expression"/> in the page (a promise is awaited); a script error throws.</summary>
    public async Task<JsonElement> EvaluateAsync(string expression)
    {
        var result = await SendAsync("Runtime.evaluate", new { expression, awaitPromise = true, returnByValue = true });
        if (result.TryGetProperty("exceptionDetails", out var error))
            throw new InvalidOperationException($"The page's script failed: {error}");
        return result.GetProperty("result").TryGetProperty("value", out var value) ? value.Clone() : default;
    }

    /// <summary>Waits until <paramref name="expression"/> is truthy in the page (what it waits for is named on timeout).</summary>
    public async Task WaitForAsync(string expression, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromMinutes(2));
        while (true)
        {
            var value = await EvaluateAsync($"!!({expression})");
            if (value.ValueKind == JsonValueKind.True)
                return;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"The page never satisfied: {expression}. Errors: {string.Join("; ", PageErrors)}");
            await Task.Delay(100);
        }
    }

    /// <summary>Sets the viewport (CSS pixels; narrow ones as a phone).</summary>
    public Task SetViewportAsync(int width, int height)
        => SendAsync("Emulation.setDeviceMetricsOverride", new { width, height, deviceScaleFactor = 1, mobile = width < 600 });

    /// <summary>Moves the mouse over the centre of the first element <paramref name="selector"/> matches.</summary>
    public async Task HoverAsync(string selector)
    {
        var box = await EvaluateAsync($"(() => {{ const e = document.querySelector({JsonSerializer.Serialize(selector)}); e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; }})()");
        await SendAsync("Input.dispatchMouseEvent", new { type = "mouseMoved", x = box[0].GetDouble(), y = box[1].GetDouble() });
    }

    /// <summary>Presses a key with the keyboard (e.g. Tab, Enter), as a user would.</summary>
    public async Task PressAsync(string key, int code)
    {
        // keyDown with its text, as a real key press: Enter then also activates a focused button.
        var text = key == "Enter" ? "\r" : "";
        await SendAsync("Input.dispatchKeyEvent", new { type = "keyDown", key, code = key, windowsVirtualKeyCode = code, nativeVirtualKeyCode = code, text, unmodifiedText = text });
        await SendAsync("Input.dispatchKeyEvent", new { type = "keyUp", key, code = key, windowsVirtualKeyCode = code, nativeVirtualKeyCode = code });
    }

    /// <summary>Types <paramref name="text"/> into the focused element.</summary>
    public Task TypeAsync(string text) => SendAsync("Input.insertText", new { text });

    /// <summary>Saves a PNG of the whole page.</summary>
    public async Task ScreenshotAsync(string path)
    {
        var shot = await SendAsync("Page.captureScreenshot", new { format = "png", captureBeyondViewport = true });
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        await File.WriteAllBytesAsync(path, Convert.FromBase64String(shot.GetProperty("data").GetString()!));
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _receiving;
        }
        catch (Exception)
        {
            // The browser goes anyway.
        }
        _socket.Dispose();
        if (!_process.HasExited)
            _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
        _process.Dispose();
        _stop.Dispose();
    }
}
