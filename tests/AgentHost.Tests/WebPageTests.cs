using System.Net;
using System.Text;
using System.Text.Json;

namespace AgentHost.Tests;

/// <summary>The real <c>agenthost serve</c> (stories260K, the configured agents) and a real headless Chromium for <see cref="WebPageTests"/>.</summary>
public sealed class WebPageFixture : IAsyncLifetime
{
    internal ServeProcess Serve { get; private set; } = null!;

    internal DevToolsBrowser Browser { get; private set; } = null!;

    internal string Address => $"http://127.0.0.1:{Serve.Port}";

    /// <summary>Where the screenshots go (the test output folder; the README's copies are in docs/images).</summary>
    internal static string Artifacts => Path.Combine(AppContext.BaseDirectory, "artifacts", "web");

    private string _profile = null!;

    public async Task InitializeAsync()
    {
        _profile = Directory.CreateTempSubdirectory("agenthost-web-chromium-").FullName;
        Serve = await ServeProcess.StartAsync(new Dictionary<string, string> { ["AGENTHOST_Server__Models"] = "stories260k" });
        Browser = await DevToolsBrowser.StartAsync(_profile);
    }

    public async Task DisposeAsync()
    {
        await Browser.DisposeAsync();
        Serve.Dispose();
        Directory.Delete(_profile, recursive: true);
    }
}

/// <summary>
/// The page at <c>/</c> of <c>serve</c>, driven in Chromium as a user would (keyboard, mouse) against the real server:
/// what it shows is checked against what the API answers.
/// </summary>
public sealed class WebPageTests(WebPageFixture fixture) : IClassFixture<WebPageFixture>
{
    private const string Prompt = "Once upon a time";
    private DevToolsBrowser Browser => fixture.Browser;

    /// <summary>Opens the page with a new chat, once the model and strategy lists have loaded.</summary>
    private async Task OpenAsync(string? address = null)
    {
        await Browser.NavigateAsync((address ?? fixture.Address) + "/");
        await Browser.EvaluateAsync("localStorage.clear(); sessionStorage.clear(); true");
        await Browser.NavigateAsync((address ?? fixture.Address) + "/");
        await Browser.WaitForAsync("document.querySelector('#target option') && document.querySelector('#strategy option')");
    }

    private async Task ChooseAsync(string select, string value)
        => await Browser.EvaluateAsync($"(() => {{ const s = document.getElementById('{select}'); s.value = {JsonSerializer.Serialize(value)}; s.dispatchEvent(new Event('change')); return s.value; }})()");

    /// <summary>Types the message into the composer and presses Enter; waits for the reply to finish.</summary>
    private async Task SendAsync(string text)
    {
        await Browser.EvaluateAsync("document.getElementById('input').focus()");
        await Browser.TypeAsync(text);
        await Browser.PressAsync("Enter", 13);
        await Browser.WaitForAsync("document.querySelectorAll('#messages .msg.assistant').length > 0 && !document.getElementById('send').disabled");
    }

    /// <summary>The conversation the page keeps in localStorage.</summary>
    private async Task<JsonElement> StoredAsync()
        => JsonDocument.Parse((await Browser.EvaluateAsync("localStorage.getItem('agenthost.chat')")).GetString()!).RootElement;

    private async Task<JsonElement> ApiAsync(string body)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromMinutes(2) };
        var response = await http.PostAsync(fixture.Address + "/v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
    }

    private async Task<string> GreedyAnswerAsync()
        => (await ApiAsync($$"""{"model": "stories260k", "messages": [{"role": "user", "content": "{{Prompt}}"}], "max_tokens": 64}"""))
            .GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;

    [Fact]
    public async Task TheStreamedReplyIsTheApisGreedyAnswerAndEachTokenShowsItsAlternatives()
    {
        await OpenAsync();
        await ChooseAsync("strategy", "greedy");

        await SendAsync(Prompt);

        var reply = (await StoredAsync()).GetProperty("messages")[1];
        var expected = await GreedyAnswerAsync();
        Assert.Equal(expected, reply.GetProperty("content").GetString());
        Assert.Null(reply.TryGetProperty("error", out var error) ? error.GetString() : null);
        // The rendered reply holds the same words (Markdown only regroups whitespace).
        var shown = (await Browser.EvaluateAsync("document.querySelector('#messages .msg.assistant .content').textContent")).GetString()!;
        Assert.Equal(string.Join(' ', expected.Split((char[])[' ', '\n'], StringSplitOptions.RemoveEmptyEntries)), string.Join(' ', shown.Split((char[])[' ', '\n'], StringSplitOptions.RemoveEmptyEntries)));

        // The inspector: one token per generated token, their texts the reply, each with an entropy colour.
        var tokens = await Browser.EvaluateAsync("[...document.querySelectorAll('#tokens .tok')].map(t => t.textContent)");
        Assert.Equal(reply.GetProperty("usage").GetProperty("completion_tokens").GetInt32(), tokens.GetArrayLength());
        Assert.Equal(expected, string.Concat(tokens.EnumerateArray().Select(t => t.GetString())));
        Assert.All(reply.GetProperty("tokens").EnumerateArray(), t => Assert.True(t.GetProperty("h").GetDouble() >= 0));
        Assert.Contains("decode calls", (await Browser.EvaluateAsync("document.getElementById('summary').textContent")).GetString());

        // Hovering a token with the mouse shows its alternatives, the chosen (greedy: the likeliest) first.
        await Browser.HoverAsync("#tokens .tok:nth-child(2)");
        await Browser.WaitForAsync("!document.getElementById('tip').hidden");
        var alternatives = await Browser.EvaluateAsync("[...document.querySelectorAll('#tip tr.alt')].map(r => r.firstChild.textContent)");
        var second = reply.GetProperty("tokens")[1];
        Assert.Equal(5, alternatives.GetArrayLength());
        Assert.Equal(JsonSerializer.Serialize(second.GetProperty("t").GetString()), alternatives[0].GetString());
        Assert.Equal(second.GetProperty("top")[0][0].GetString(), JsonSerializer.Deserialize<string>(alternatives[0].GetString()!));
        Assert.Equal(1, (await Browser.EvaluateAsync("document.querySelectorAll('#tip tr.chosen').length")).GetInt32());
        await Browser.ScreenshotAsync(Path.Combine(WebPageFixture.Artifacts, "chat.png"));

        // Keyboard only: Tab from a token moves the focus to the next one, whose alternatives show.
        await Browser.EvaluateAsync("document.querySelector('#tokens .tok:nth-child(3)').focus()");
        await Browser.PressAsync("Tab", 9);
        await Browser.WaitForAsync("document.activeElement.dataset.index === '3' && document.getElementById('tip').textContent.startsWith('token 3:')");
        Assert.Empty(Browser.PageErrors);

        // Readable on a phone: nothing wider than 360 px.
        await Browser.SetViewportAsync(360, 780);
        Assert.True((await Browser.EvaluateAsync("document.documentElement.scrollWidth <= 360")).GetBoolean());
        await Browser.ScreenshotAsync(Path.Combine(WebPageFixture.Artifacts, "chat-360.png"));
        await Browser.SetViewportAsync(1280, 900);

        // Dark when the system is.
        var light = (await Browser.EvaluateAsync("getComputedStyle(document.body).backgroundColor")).GetString();
        await Browser.SendAsync("Emulation.setEmulatedMedia", new { features = new[] { new { name = "prefers-color-scheme", value = "dark" } } });
        Assert.Equal("rgb(20, 21, 24)", (await Browser.EvaluateAsync("getComputedStyle(document.body).backgroundColor")).GetString());
        Assert.NotEqual("rgb(20, 21, 24)", light);
        await Browser.ScreenshotAsync(Path.Combine(WebPageFixture.Artifacts, "chat-dark.png"));
        await Browser.SendAsync("Emulation.setEmulatedMedia", new { features = new[] { new { name = "prefers-color-scheme", value = "light" } } });

        // New chat (with the keyboard) empties the conversation, on the page and in storage.
        await Browser.EvaluateAsync("document.getElementById('new-chat').focus()");
        await Browser.PressAsync("Enter", 13);
        await Browser.WaitForAsync("document.querySelectorAll('#messages .msg').length === 0");
        Assert.Equal(0, (await StoredAsync()).GetProperty("messages").GetArrayLength());
    }

    [Fact]
    public async Task StopEndsTheReplyInFlightAndTheNextMessageIsAnsweredAgain()
    {
        await OpenAsync();
        // The browser holds the request (DevTools' Fetch domain) so that Stop surely comes while it is in flight.
        await Browser.SendAsync("Fetch.enable", new { patterns = new[] { new { urlPattern = "*/v1/chat/completions", requestStage = "Request" } } });
        try
        {
            await Browser.EvaluateAsync("document.getElementById('input').focus()");
            await Browser.TypeAsync(Prompt);
            await Browser.PressAsync("Enter", 13);
            await Browser.WaitForAsync("!document.getElementById('stop').disabled");
            await Browser.EvaluateAsync("document.getElementById('stop').focus()");
            await Browser.PressAsync("Enter", 13);
            await Browser.WaitForAsync("!document.getElementById('send').disabled");
        }
        finally
        {
            await Browser.SendAsync("Fetch.disable");
        }

        Assert.Equal("Stopped.", (await Browser.EvaluateAsync("document.getElementById('status').textContent")).GetString());
        var stopped = (await StoredAsync()).GetProperty("messages")[1];
        Assert.True(stopped.GetProperty("stopped").GetBoolean());
        Assert.False(stopped.TryGetProperty("error", out _));

        await SendAsync("The dog");
        var answered = (await StoredAsync()).GetProperty("messages")[3];
        Assert.False(string.IsNullOrEmpty(answered.GetProperty("content").GetString()));
        Assert.Empty(Browser.PageErrors);
    }

    [Fact]
    public async Task RecyclingMarksItsAcceptedDraftsAndKeepsTheGreedyText()
    {
        await OpenAsync();
        await ChooseAsync("strategy", "recycling");

        await SendAsync(Prompt);

        var reply = (await StoredAsync()).GetProperty("messages")[1];
        Assert.Equal(await GreedyAnswerAsync(), reply.GetProperty("content").GetString());   // lossless
        Assert.Equal("recycling", reply.GetProperty("decoding").GetProperty("strategy").GetString());
        var drafts = reply.GetProperty("events").EnumerateArray().Where(e => e.GetProperty("type").GetString() == "draft").ToList();
        var accepted = drafts.Sum(d => d.GetProperty("accepted").GetArrayLength());
        Assert.True(accepted > 0, "stories260K's story repeats itself: some drafts must be accepted");
        Assert.Equal(reply.GetProperty("decoding").GetProperty("stats").GetProperty("accepted_drafts").GetDouble(), accepted);

        // Every accepted draft token is marked, and the marked tokens are exactly the accepted ones, in order.
        var marked = await Browser.EvaluateAsync("[...document.querySelectorAll('#tokens .tok.acc')].map(t => t.textContent)");
        Assert.Equal(drafts.SelectMany(d => d.GetProperty("accepted").EnumerateArray().Select(t => t.GetString())), marked.EnumerateArray().Select(t => t.GetString()));
        // The tokens shown are the reply: the prefill's choice, then each step's.
        var shown = (await Browser.EvaluateAsync("[...document.querySelectorAll('#tokens .tok')].map(t => t.textContent).join('')")).GetString()!;
        Assert.Equal(reply.GetProperty("content").GetString(), shown);
        Assert.Contains("MAT", (await Browser.EvaluateAsync("document.getElementById('summary').textContent")).GetString());
        // Each step that drafted is listed; the steps without a draft are counted on one line.
        var drafted = drafts.Count(d => d.GetProperty("accepted").GetArrayLength() + d.GetProperty("rejected").GetArrayLength() > 0);
        Assert.Equal(drafted, (await Browser.EvaluateAsync("document.querySelectorAll('#events > li:not(.plain-steps)').length")).GetInt32());
        Assert.StartsWith($"{drafts.Count - drafted} steps without a draft", (await Browser.EvaluateAsync("document.querySelector('#events > li.plain-steps').textContent")).GetString());

        await Browser.HoverAsync("#tokens .tok.acc");
        await Browser.WaitForAsync("document.getElementById('tip').textContent.includes('accepted draft token')");
        await Browser.ScreenshotAsync(Path.Combine(WebPageFixture.Artifacts, "inspector-recycling.png"));
        Assert.Empty(Browser.PageErrors);
    }

    [Fact]
    public async Task CautiousShowsEachBranchingStepWithItsTrialsAndTheChosenOne()
    {
        await OpenAsync();
        await ChooseAsync("strategy", "cautious");
        await Browser.EvaluateAsync("(() => { const s = document.getElementById('opt-seed'); s.value = '7'; s.dispatchEvent(new Event('change')); })()");

        await SendAsync(Prompt);

        var reply = (await StoredAsync()).GetProperty("messages")[1];
        var steps = reply.GetProperty("events").EnumerateArray().Where(e => e.GetProperty("type").GetString() == "branch").ToList();
        Assert.Equal(reply.GetProperty("decoding").GetProperty("stats").GetProperty("branching_steps").GetDouble(), steps.Count);
        Assert.NotEmpty(steps);
        var shown = await Browser.EvaluateAsync("[...document.querySelectorAll('#events > li')].map(li => [li.querySelectorAll('.trial').length, li.querySelectorAll('.trial.chosen').length])");
        for (var i = 0; i < steps.Count; i++)
        {
            Assert.Equal(steps[i].GetProperty("trials").GetArrayLength(), shown[i][0].GetInt32());
            Assert.Equal(1, shown[i][1].GetInt32());
        }
        await Browser.ScreenshotAsync(Path.Combine(WebPageFixture.Artifacts, "inspector-cautious.png"));
        Assert.Empty(Browser.PageErrors);
    }

    [Fact]
    public async Task TheCalculatorAgentShowsItsToolCallAndResultAsSteps()
    {
        await OpenAsync();
        await ChooseAsync("target", "agent:calculator");

        await SendAsync("What is 2 plus 3?");

        var reply = (await StoredAsync()).GetProperty("messages")[1];
        var trace = reply.GetProperty("steps");
        Assert.Contains(trace.EnumerateArray(), s => s.GetProperty("kind").GetString() == "call" && s.GetProperty("function").GetString() == "Math_Add");
        var steps = await Browser.EvaluateAsync("[...document.querySelectorAll('#messages .msg.assistant .step')].map(s => s.className + '|' + s.textContent)");
        Assert.Equal(trace.GetArrayLength(), steps.GetArrayLength());
        Assert.Contains(steps.EnumerateArray(), s => s.GetString()!.StartsWith("step call|→ calculator: Math_Add", StringComparison.Ordinal));
        Assert.Contains(steps.EnumerateArray(), s => s.GetString()!.StartsWith("step result|← calculator: Math_Add", StringComparison.Ordinal));
        Assert.False(string.IsNullOrWhiteSpace(reply.GetProperty("content").GetString()));
        Assert.False(string.IsNullOrWhiteSpace((await Browser.EvaluateAsync("document.querySelector('#messages .msg.assistant .content').textContent")).GetString()));
        await Browser.ScreenshotAsync(Path.Combine(WebPageFixture.Artifacts, "agent.png"));
        Assert.Empty(Browser.PageErrors);
    }

    [Fact]
    public async Task ModelOutputWithHtmlRendersAsTextAndCreatesNoElement()
    {
        // stories260K never writes HTML, so the reply is put where the page keeps its conversation; the page renders a
        // stored reply through the same code as a streamed one.
        // HTML in every place the Markdown renderer handles: before and after inline marks, a heading, a list, a code block.
        const string Hostile = "<script>window.pwned = 1</script><img src=x onerror=\"window.pwned = 2\"> **bold** `<b>code</b>` <b>after</b>\n"
            + "# <img src=x onerror=\"window.pwned = 4\">\n- <iframe src=\"/\"></iframe>\n\n```\n<iframe src=\"/\"></iframe>\n```\nend <svg onload=\"window.pwned = 5\"></svg>";
        await OpenAsync();
        var chat = JsonSerializer.Serialize(new
        {
            messages = new object[]
            {
                new { role = "user", content = "<i>hi</i>" },
                new
                {
                    role = "assistant", content = Hostile, target = "model:stories260k", strategy = "greedy",
                    tokens = new[] { new { t = "<script>", lp = -0.1, h = 0.5, top = new[] { new object[] { "<script>", -0.1 }, new object[] { "<img src=x onerror=alert(1)>", -2.5 } } } },
                    events = Array.Empty<object>(), steps = new[] { new { depth = 0, kind = "call", function = "<b>f</b>", text = "<img src=x onerror=\"window.pwned = 3\">" } },
                },
            },
            settings = new { },
        });
        await Browser.EvaluateAsync($"localStorage.setItem('agenthost.chat', {JsonSerializer.Serialize(chat)}); true");
        await Browser.NavigateAsync(fixture.Address + "/");
        await Browser.WaitForAsync("document.querySelector('#messages .msg.assistant')");
        await Browser.EvaluateAsync("document.querySelector('#messages .msg.assistant').click()");
        await Browser.HoverAsync("#tokens .tok");
        await Browser.WaitForAsync("!document.getElementById('tip').hidden");

        Assert.Equal(0, (await Browser.EvaluateAsync("document.querySelectorAll('#messages script, #messages img, #messages iframe, #messages b, #messages i, #messages svg, #tokens script, #tip img, #tip script').length")).GetInt32());
        Assert.Equal(JsonValueKind.Undefined, (await Browser.EvaluateAsync("window.pwned")).ValueKind);
        var text = (await Browser.EvaluateAsync("document.getElementById('messages').textContent")).GetString()!;
        Assert.Contains("<script>window.pwned = 1</script>", text);
        Assert.Contains("<iframe src=\"/\"></iframe>", text);
        Assert.Contains("<i>hi</i>", text);
        Assert.Contains("<b>after</b>", text);
        Assert.Contains("end <svg onload=\"window.pwned = 5\"></svg>", text);
        // Markdown still works, built from elements the page makes itself.
        Assert.Equal("bold", (await Browser.EvaluateAsync("document.querySelector('#messages .msg.assistant strong').textContent")).GetString());
        Assert.Equal("<b>code</b>", (await Browser.EvaluateAsync("document.querySelector('#messages .msg.assistant p code').textContent")).GetString());
        Assert.Contains("<img src=x onerror=alert(1)>", (await Browser.EvaluateAsync("document.getElementById('tip').textContent")).GetString());
    }

    [Fact]
    public async Task WithAnApiKeyThePageLoadsWithoutItAndTheKeyTypedInTheTabUnlocksTheApi()
    {
        const string Key = "s3cret-key";
        using var keyed = await ServeProcess.StartAsync(new Dictionary<string, string> { ["AGENTHOST_Server__Models"] = "stories260k", ["AGENTHOST_Server__ApiKey"] = Key });
        var address = $"http://127.0.0.1:{keyed.Port}";
        using var http = new HttpClient();
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(address + "/")).StatusCode);   // the page holds no secret
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(address + "/ui/app.js")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync(address + "/v1/models")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync(address + "/v1/agents")).StatusCode);

        await Browser.NavigateAsync(address + "/");
        await Browser.WaitForAsync("document.getElementById('status').textContent.includes('API key')");
        Assert.Equal(0, (await Browser.EvaluateAsync("document.querySelectorAll('#target option').length")).GetInt32());

        await Browser.EvaluateAsync("document.querySelector('.key').open = true; document.getElementById('apikey').focus()");
        await Browser.TypeAsync(Key);
        await Browser.PressAsync("Tab", 9);
        await Browser.WaitForAsync("document.querySelector('#target option')");
        Assert.Equal(Key, (await Browser.EvaluateAsync("sessionStorage.getItem('agenthost.key')")).GetString());
        Assert.DoesNotContain(Key, (await Browser.EvaluateAsync("JSON.stringify(localStorage)")).GetString());

        await SendAsync(Prompt);
        var reply = (await StoredAsync()).GetProperty("messages")[1];
        Assert.False(reply.TryGetProperty("error", out _));
        Assert.False(string.IsNullOrEmpty(reply.GetProperty("content").GetString()));
        await Browser.EvaluateAsync("sessionStorage.clear(); localStorage.clear(); true");
    }

    [Fact]
    public async Task APageOnAnotherOriginCannotDriveTheServer()
    {
        // http://localhost:PORT is another origin than http://127.0.0.1:PORT (same server, both hosts allowed).
        var other = $"http://localhost:{fixture.Serve.Port}";
        await OpenAsync(other);
        var sameOrigin = await Browser.EvaluateAsync("fetch('/v1/models').then(r => r.status)");
        Assert.Equal(200, sameOrigin.GetInt32());

        var crossOrigin = await Browser.EvaluateAsync($$"""
            Promise.all([
              fetch('{{fixture.Address}}/v1/chat/completions', { method: 'POST', headers: { 'Content-Type': 'application/json' },
                body: JSON.stringify({ model: 'stories260k', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }) }).then(r => 'status ' + r.status, e => 'refused'),
              fetch('{{fixture.Address}}/v1/models').then(r => 'status ' + r.status, e => 'refused'),
            ])
            """);
        Assert.Equal(["refused", "refused"], crossOrigin.EnumerateArray().Select(e => e.GetString()));

        // What the server answered: 403 to any request a browser marks as coming from elsewhere.
        using var http = new HttpClient();
        foreach (var origin in new[] { other, "http://evil.example", "null", $"{fixture.Address}.evil.example" })
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, fixture.Address + "/v1/chat/completions")
            {
                Content = new StringContent("""{"model": "stories260k", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}""", Encoding.UTF8, "application/json"),
            };
            request.Headers.Add("Origin", origin);
            using var response = await http.SendAsync(request);
            Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
            Assert.Contains("origin_not_allowed", await response.Content.ReadAsStringAsync());
        }
        using var sameSite = new HttpRequestMessage(HttpMethod.Get, fixture.Address + "/v1/models");
        sameSite.Headers.Add("Sec-Fetch-Site", "same-site");
        Assert.Equal(HttpStatusCode.Forbidden, (await http.SendAsync(sameSite)).StatusCode);
        using var own = new HttpRequestMessage(HttpMethod.Get, fixture.Address + "/v1/models");
        own.Headers.Add("Origin", fixture.Address);
        own.Headers.Add("Sec-Fetch-Site", "same-origin");
        Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(own)).StatusCode);
    }
}
