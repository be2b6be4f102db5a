using System.Text.Json;
using AgentHost.Extensions.AI.Analysis;
using AgentHost.Extensions.AI.Chat;
using AgentHost.Llama;
using AgentHost.Llama.Analysis;
using AgentHost.Llama.Models;
using AgentHost.Llama.Tests;
using Microsoft.Extensions.AI;

namespace AgentHost.SemanticKernel.Tests.Analysis;

/// <summary>
/// Critical tokens of an agent run, on stories260K in the <c>plain</c> chat format with a live tool. The scripted task:
/// look up Lily's pet, and only hers. The recorded run calls <c>pets</c> for Lily (right), then for Tom (wrong) and
/// answers from Tom's result. The story model never writes a tool call itself, so a rollout calls a tool exactly when
/// the prefix already holds the whole call: the task then fails from the token that completes Tom's call on.
/// </summary>
public sealed class AgentRolloutTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    private readonly LlamaModel _model = LlamaModel.Load("stories260K", TestModels.Stories260K,
        new ModelSettings { ContextSize = 1024, Threads = TestModels.Threads, BatchThreads = TestModels.Threads });

    private readonly List<string> _liveCalls = [];

    public void Dispose() => _model.Dispose();

    private AIFunction Pets() => AIFunctionFactory.Create((string name) =>
    {
        lock (_liveCalls)
            _liveCalls.Add(name);
        return name == "Lily" ? "Lily has a cat." : $"{name} has a fish.";
    }, "pets", "Looks up the pet of a person.");

    private static ChatMessage Call(string text, string id, string name)
        => new(ChatRole.Assistant, [new TextContent(text), new FunctionCallContent(id, "pets", new Dictionary<string, object?> { ["name"] = name })]);

    private static IReadOnlyList<ChatMessage> Conversation() =>
    [
        new(ChatRole.User, "What pet does Lily have?"),
        Call("I will ask about Lily.", "c1", "Lily"),
        new(ChatRole.Tool, [new FunctionResultContent("c1", "Lily has a cat.")]),
        Call("Now Tom.", "c2", "Tom"),
        new(ChatRole.Tool, [new FunctionResultContent("c2", "Tom has a dog.")]),
        new(ChatRole.Assistant, "Lily has a dog."),
    ];

    // The task's outcome: pets called for Lily, and for nobody else.
    private static bool OnlyLily(ToolCallFormat format, string run)
    {
        var names = format.CreateParser(["pets"]).ParseAll(run).OfType<FunctionCallContent>().Select(c => c.Arguments?["name"]?.ToString()).ToList();
        return names.Count > 0 && names.All(n => n == "Lily");
    }

    [Fact]
    public async Task The_critical_token_of_an_agent_run_is_in_the_wrong_tool_call_and_rollouts_run_the_tool_live()
    {
        var format = ChatFormatCatalog.Default.Get("plain");
        var agent = AgentRollouts.Create(_model, format, Conversation(), [Pets()], maxTurns: 2);
        var verifier = TrajectoryVerifiers.Create("pets only for Lily", (_, run) => OnlyLily(format.ToolCalls, run));
        using var session = await _model.CreateSessionAsync();

        var report = await RolloutAnalyzer.AnalyzeAsync(session, agent.CreateRequest(verifier, new RolloutOptions { Rollouts = 3, MaxTokens = 12, Seed = 5 }));

        // Labels: the agent's plans and calls, the tools' results; only the agent's tokens are analysed.
        var spans = report.TokenSpans!;
        Assert.Equal(report.TrajectoryTokens.Length, spans.Count);
        Assert.Contains("plan", spans);
        Assert.Contains("tool_call", spans);
        Assert.Contains("tool_result", spans);
        Assert.All(report.Prefixes, p => Assert.Contains(spans[p.Length - 1], new[] { "plan", "tool_call" }));
        Assert.Equal(JudgeScope.Full, report.Settings.Judge);
        Assert.StartsWith("agent (plain format, tools pets", report.Continuation, StringComparison.Ordinal);
        Assert.False(report.TrajectoryPasses);

        // The calls of the trajectory, as token ranges: Lily's in the first turn, Tom's in the second.
        var callRuns = new List<(int Start, int End)>();
        for (var t = 0; t < spans.Count; t++)
        {
            if (spans[t] == "tool_call" && (t == 0 || spans[t - 1] != "tool_call"))
                callRuns.Add((t, t));
            if (spans[t] == "tool_call")
                callRuns[^1] = (callRuns[^1].Start, t);
        }
        Assert.Equal(2, callRuns.Count);
        var tom = callRuns[1];

        // Every verdict recounted from the run listed with it; the rule re-applied to the counts.
        var counts = new int[report.Prefixes.Count];
        for (var p = 0; p < report.Prefixes.Count; p++)
        {
            var prefix = report.Prefixes[p];
            foreach (var rollout in prefix.Rollouts)
                Assert.Equal(OnlyLily(format.ToolCalls, prefix.PrefixText + rollout.Text), rollout.Passed);
            counts[p] = prefix.Rollouts.Count(r => r.Passed);
            Assert.Equal(counts[p], prefix.Correct);
            // After Tom's call is complete no rollout can undo it; between the calls every rollout keeps Lily's call only.
            if (prefix.Length - 1 >= tom.End)
                Assert.Equal(0, prefix.Correct);
            if (prefix.Length - 1 > callRuns[0].End && prefix.Length - 1 < tom.Start)
                Assert.Equal(3, prefix.Correct);
        }
        output.WriteLine(string.Join(" ", report.Prefixes.Select(p => $"{p.Length}{spans[p.Length - 1][0]}:{p.Correct}")));
        var critical = Assert.IsType<CriticalToken>(report.Critical);
        output.WriteLine($"critical y_{critical.Length} '{critical.Text}' ({critical.Span}); Tom's call tokens {tom.Start + 1}-{tom.End + 1}; alternatives pass {report.Alternatives!.Correct}/3; live calls {_liveCalls.Count}");
        Assert.Equal(report.Prefixes[CriticalTokenRule.Find(counts, report.Settings.RecoverThreshold)].Length, critical.Length);
        Assert.Equal("tool_call", critical.Span);
        Assert.InRange(critical.Length - 1, tom.Start, tom.End);

        // Tools ran live: each executed call is listed with the live tool's answer (the recorded run said "Tom has a dog.").
        var listed = report.Prefixes.SelectMany(p => p.Rollouts).Concat(report.Alternatives!.Completions).SelectMany(r => r.ToolCalls!).ToList();
        Assert.NotEmpty(listed);
        Assert.Equal(_liveCalls.Count, listed.Count);
        Assert.All(listed, c => Assert.Equal(JsonDocument.Parse(c.Arguments).RootElement.GetProperty("name").GetString() == "Lily" ? "Lily has a cat." : "Tom has a fish.", c.Result));
        Assert.Contains(listed, c => c.Result == "Tom has a fish.");

        // Without the critical token Tom's call never completes: alternatives pass, and their pairs are cDPO data.
        var alternatives = report.Alternatives!;
        Assert.All(alternatives.Completions, c => Assert.Equal(OnlyLily(format.ToolCalls, alternatives.PrefixText + c.Text), c.Passed));
        var pairs = CriticalPairs.From(report);
        Assert.Equal(alternatives.Completions.Where(c => c.Passed).Select(c => c.Text).Distinct().Count(), pairs.Count);
        Assert.All(pairs, pair =>
        {
            Assert.Equal(report.Prompt + alternatives.PrefixText, pair.Prompt);
            Assert.EndsWith("Lily has a dog.", pair.Rejected, StringComparison.Ordinal);
        });
    }

    [Theory]
    [InlineData("qwen3", "chatml")]
    [InlineData("llama", null)]
    public async Task A_family_models_template_and_call_syntax_label_the_run_and_rollouts_parse_its_calls(string family, string? formatName)
    {
        // Real tokenizer and chat template (control tokens in the markup, turn ends in the run), random weights: the
        // labels and the plumbing. Llama 3's own template; Qwen3 in the built-in chatml (its own template writes the last
        // assistant turn differently from an earlier one, so a shorter conversation is no prefix: a clear error).
        using var model = LlamaModel.Load(family, AgentHost.Llama.Tests.Support.FamilyModels.Get(family), new ModelSettings { ContextSize = 2048, Threads = TestModels.Threads });
        var format = ChatFormatCatalog.Default.Resolve(model, formatName);
        var agent = AgentRollouts.Create(model, format, Conversation(), [Pets()], maxTurns: 1);

        var spans = agent.TokenSpans;
        Assert.Contains("plan", spans);
        Assert.Contains("tool_call", spans);
        Assert.Contains("tool_result", spans);
        // The labelled text reads back: the agent's call tokens spell its calls, the plan tokens its words.
        string Text(string span) => model.Detokenize([.. agent.TrajectoryTokens.Where((_, i) => spans[i] == span)]);
        Assert.Contains("Tom", Text("tool_call"), StringComparison.Ordinal);
        Assert.Contains("Now Tom.", Text("plan"), StringComparison.Ordinal);
        Assert.Contains("Lily has a cat.", Text("tool_result"), StringComparison.Ordinal);
        Assert.DoesNotContain("Tom", Text("plan").Replace("Now Tom.", "", StringComparison.Ordinal), StringComparison.Ordinal);

        using var session = await model.CreateSessionAsync();
        var verifier = TrajectoryVerifiers.Create("pets only for Lily", (_, run) => OnlyLily(format.ToolCalls, run));
        var request = agent.CreateRequest(verifier, new RolloutOptions { Rollouts = 1, MaxTokens = 4, Seed = 3, Stride = 8 });
        var report = await RolloutAnalyzer.AnalyzeAsync(session, request);
        Assert.False(report.TrajectoryPasses);
        foreach (var prefix in report.Prefixes)
        {
            foreach (var rollout in prefix.Rollouts)
                Assert.Equal(OnlyLily(format.ToolCalls, prefix.PrefixText + rollout.Text), rollout.Passed);
        }
    }

    [Fact]
    public void A_conversation_without_an_agent_turn_is_one_clear_error()
    {
        var error = Assert.Throws<AgentHostException>(() =>
            AgentRollouts.Create(_model, ChatFormatCatalog.Default.Get("plain"), [new ChatMessage(ChatRole.User, "Hi")], [Pets()]));
        Assert.Equal("An agent run needs the turns before the agent's first reply and at least one assistant message.", error.Message);
        var verifier = Assert.Throws<AgentHostException>(() => AgentVerifiers.ParseToolCalled(ToolCallFormat.Generic, "pets(name=Lily)"));
        Assert.Equal("A 'tool' verifier is NAME{\"argument\": value}, not 'pets(name=Lily)'.", verifier.Message);
    }

    [Fact]
    public async Task The_tool_verifier_passes_when_a_written_call_has_the_given_arguments()
    {
        var verifier = AgentVerifiers.ParseToolCalled(ToolCallFormat.Generic, "pets{\"name\": \"Lily\"}");
        Assert.Equal("calls pets(name=\"Lily\")", verifier.Description);
        Assert.True(await verifier.VerifyAsync("", "ok <tool_call>{\"name\": \"pets\", \"arguments\": {\"name\": \"Lily\", \"x\": 1}}</tool_call>", default));
        Assert.False(await verifier.VerifyAsync("", "<tool_call>{\"name\": \"pets\", \"arguments\": {\"name\": \"Tom\"}}</tool_call>", default));
        Assert.False(await verifier.VerifyAsync("", "Lily has a cat.", default));
    }
}
