using System.Text;
using System.Text.Json;
using AgentHost.Extensions.AI.Chat;
using AgentHost.Llama;
using AgentHost.Llama.Analysis;
using AgentHost.Llama.Models;
using Microsoft.Extensions.AI;

namespace AgentHost.Extensions.AI.Analysis;

/// <summary>
/// Critical tokens of an agent run: the agent's recorded conversation (system and user turns, then assistant turns with
/// their tool calls and the tools' results) rendered by its chat format is the trajectory; only the tokens the agent
/// wrote (its plans and tool calls) are analysed; every rollout continues the agent from its prefix: the reply in
/// progress is finished by sampling, its tool calls run live, their results go back into the conversation, and the
/// agent answers again (up to <see cref="MaxTurns"/> turns), as an agent loop does. The verifier judges the prefix
/// followed by the whole run (the task's outcome: its answer, or <see cref="AgentVerifiers.ToolCalled"/>).
/// </summary>
public sealed class AgentRollouts : IRolloutContinuation
{
    private readonly LlamaModel _model;
    private readonly ChatFormat _format;
    private readonly IReadOnlyList<ChatMessage> _conversation;
    private readonly IReadOnlyList<AIFunction> _tools;
    private readonly byte[] _text;            // the rendered conversation, UTF-8
    private readonly long[] _tokenEnd;        // per full token: the byte of the rendered text where it ends
    private readonly int _promptCount;        // full tokens that belong to the prompt
    private readonly int[] _turnOf;           // per trajectory token: the assistant message whose turn it is in, or -1
    private readonly Dictionary<int, long> _contentStart = [];   // assistant message -> byte where its own text starts

    private AgentRollouts(LlamaModel model, ChatFormat format, IReadOnlyList<ChatMessage> conversation, IReadOnlyList<AIFunction> tools, int maxTurns)
    {
        _model = model;
        _format = format;
        _conversation = conversation;
        _tools = tools;
        MaxTurns = maxTurns;

        var first = conversation.ToList().FindIndex(m => m.Role == ChatRole.Assistant);
        Require(first > 0, "An agent run needs the turns before the agent's first reply and at least one assistant message.");
        var full = Render(conversation, addGenerationPrompt: false);
        PromptText = Render(conversation.Take(first).ToList(), addGenerationPrompt: true).Text;
        Require(full.Text.StartsWith(PromptText, StringComparison.Ordinal), $"The {format.Name} format renders the conversation's start differently alone; cannot split prompt and trajectory.");
        _text = Encoding.UTF8.GetBytes(full.Text);
        var tokens = full.Tokenize(model);

        // Where each token ends in the rendered text (a leading BOS and the tokenizer's leading space take no text).
        var decoded = TokenBytes(model, tokens, full.Text);
        var shift = decoded.Sum(b => (long)b.Length) - _text.Length;
        Require(shift >= 0, "The model's tokens do not spell the rendered conversation; cannot align them.");
        _tokenEnd = new long[tokens.Length];
        long end = -shift;
        for (var t = 0; t < tokens.Length; t++)
        {
            end += decoded[t].Length;
            _tokenEnd[t] = Math.Max(end, 0);
        }
        var promptBytes = Encoding.UTF8.GetByteCount(PromptText);
        _promptCount = _tokenEnd.TakeWhile(e => e <= promptBytes).Count();
        Require(_promptCount > 0 && _promptCount < tokens.Length, "The rendered conversation has no agent tokens after its prompt.");
        PromptTokens = tokens[.._promptCount];
        TrajectoryTokens = tokens[_promptCount..];

        // Label every trajectory token by the part of the conversation it renders.
        var spans = Enumerable.Repeat("prompt", TrajectoryTokens.Count).ToArray();
        _turnOf = Enumerable.Repeat(-1, TrajectoryTokens.Count).ToArray();
        for (var k = first; k < conversation.Count; k++)
        {
            var message = conversation[k];
            var assistant = message.Role == ChatRole.Assistant;
            long before = Bytes(Render(conversation.Take(k).ToList(), addGenerationPrompt: false));
            long start = Bytes(Render(conversation.Take(k).ToList(), addGenerationPrompt: assistant));
            long stop = Bytes(Render(conversation.Take(k + 1).ToList(), addGenerationPrompt: false));
            Require(before <= start && start <= stop && stop <= _text.Length, $"The {format.Name} format renders message {k} differently in a shorter conversation; cannot find its tokens.");
            long call = stop;
            if (assistant)
            {
                _contentStart[k] = start;
                var own = Encoding.UTF8.GetString(_text, (int)start, (int)(stop - start));
                var opener = own.IndexOf(format.ToolCalls.CallStart, StringComparison.Ordinal);
                if (message.Contents.OfType<FunctionCallContent>().Any() && opener >= 0)
                    call = start + Encoding.UTF8.GetByteCount(own[..opener]);
            }
            for (var t = 0; t < TrajectoryTokens.Count; t++)
            {
                var tokenEnd = _tokenEnd[_promptCount + t];
                if (tokenEnd <= before || tokenEnd > stop)
                    continue;
                if (assistant)
                    _turnOf[t] = k;
                spans[t] = message.Role == ChatRole.Tool ? "tool_result"
                    : !assistant ? "prompt"
                    : tokenEnd <= start ? "markup"
                    : tokenEnd <= call ? "plan" : "tool_call";
            }
        }
        TokenSpans = spans;
        // Prefixes that end on a token the agent wrote, below T as the paper's rule wants.
        PrefixLengths = [.. Enumerable.Range(1, TrajectoryTokens.Count - 1).Where(i => spans[i - 1] is "plan" or "tool_call")];
        Require(PrefixLengths.Count > 0, "The agent wrote no token before the last one; there is no prefix to analyse.");
        StopTokens = format.GetStopTokens(model);
    }

    /// <summary>The rendered prompt (the conversation before the agent's first reply, with the reply's header).</summary>
    public string PromptText { get; }

    /// <summary>The prompt's tokens.</summary>
    public IReadOnlyList<int> PromptTokens { get; }

    /// <summary>The trajectory's tokens: the rendered conversation after the prompt.</summary>
    public IReadOnlyList<int> TrajectoryTokens { get; }

    /// <summary>Per trajectory token: <c>plan</c> or <c>tool_call</c> (the agent's own text), <c>markup</c>, <c>tool_result</c> or <c>prompt</c>.</summary>
    public IReadOnlyList<string> TokenSpans { get; }

    /// <summary>The prefix lengths analysed: those that end on a plan or tool-call token.</summary>
    public IReadOnlyList<int> PrefixLengths { get; }

    /// <summary>Most assistant turns a rollout runs after the one it finishes.</summary>
    public int MaxTurns { get; }

    /// <inheritdoc />
    public string Description => $"agent ({_format.Name} format, tools {string.Join(", ", _tools.Select(t => t.Name))}, up to {MaxTurns} more turns)";

    /// <inheritdoc />
    public IReadOnlyList<int> StopTokens { get; }

    /// <summary>Prepares the analysis of <paramref name="conversation"/>; <paramref name="tools"/> run live in the rollouts.</summary>
    public static AgentRollouts Create(LlamaModel model, ChatFormat format, IReadOnlyList<ChatMessage> conversation, IReadOnlyList<AIFunction> tools, int maxTurns = 4)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(format);
        ArgumentNullException.ThrowIfNull(conversation);
        ArgumentNullException.ThrowIfNull(tools);
        Require(maxTurns is >= 0 and <= 32, $"agent turns must be from 0 to 32, not {maxTurns}.");
        return new AgentRollouts(model, format, conversation, tools, maxTurns);
    }

    /// <summary>The rollout request: this trajectory, its agent prefixes and labels, continued by this agent.</summary>
    public RolloutRequest CreateRequest(ITrajectoryVerifier verifier, RolloutOptions? options = null) => new()
    {
        Prompt = PromptText,
        PromptTokens = PromptTokens,
        TrajectoryTokens = TrajectoryTokens,
        PrefixLengths = PrefixLengths,
        TokenSpans = TokenSpans,
        Continuation = this,
        Verifier = verifier,
        Options = options ?? new RolloutOptions(),
    };

    /// <inheritdoc />
    public async ValueTask<RolloutContinuationResult> ContinueAsync(int prefixLength, string completion, RolloutGenerator generate, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(completion);
        ArgumentNullException.ThrowIfNull(generate);
        // The reply in progress: the assistant turn the prefix ends in (or, at its header, is about to start).
        var at = Math.Clamp(prefixLength - 1, 0, _turnOf.Length - 1);
        var turn = _turnOf[at] >= 0 ? _turnOf[at] : _turnOf[Math.Min(prefixLength, _turnOf.Length - 1)];
        Require(turn >= 0, $"Prefix {prefixLength} does not end in an agent turn.");
        var prefixEnd = prefixLength == 0 ? _tokenEnd[_promptCount - 1] : _tokenEnd[_promptCount + prefixLength - 1];
        var contentStart = _contentStart[turn];
        var written = prefixEnd > contentStart ? Encoding.UTF8.GetString(_text, (int)contentStart, (int)(prefixEnd - contentStart)) : "";

        var messages = _conversation.Take(turn).ToList();
        var calls = new List<RolloutToolCall>();
        var parser = _format.ToolCalls;
        var names = _tools.Select(t => t.Name).ToList();
        var reply = new ChatMessage(ChatRole.Assistant, [.. parser.CreateParser(names).ParseAll(written + completion)]);
        messages.Add(reply);
        var finished = messages.Count;   // messages up to here are the finished reply; the text after it is new
        for (var step = 0; step <= MaxTurns; step++)
        {
            var requested = reply.Contents.OfType<FunctionCallContent>().ToList();
            if (requested.Count == 0 || step == MaxTurns)
                break;
            var results = new List<AIContent>();
            foreach (var call in requested)
            {
                var result = await InvokeAsync(call, cancellationToken).ConfigureAwait(false);
                calls.Add(new RolloutToolCall(call.Name, JsonSerializer.Serialize(call.Arguments ?? new Dictionary<string, object?>()), result));
                results.Add(new FunctionResultContent(call.CallId, result));
            }
            messages.Add(new ChatMessage(ChatRole.Tool, results));
            var next = await generate(Render(messages, addGenerationPrompt: true).Tokenize(_model), StopTokens, cancellationToken).ConfigureAwait(false);
            reply = new ChatMessage(ChatRole.Assistant, [.. parser.CreateParser(names).ParseAll(next)]);
            messages.Add(reply);
        }

        // The run after the prefix: the sampled completion, then the rest as the format renders it.
        var done = Render(messages.Take(finished).ToList(), addGenerationPrompt: false).Text;
        var all = Render(messages, addGenerationPrompt: false).Text;
        var rest = all.StartsWith(done, StringComparison.Ordinal) ? all[done.Length..] : all;
        return new RolloutContinuationResult { Text = completion + rest, ToolCalls = calls };
    }

    private async Task<string> InvokeAsync(FunctionCallContent call, CancellationToken cancellationToken)
    {
        var tool = _tools.FirstOrDefault(t => string.Equals(t.Name, call.Name, StringComparison.Ordinal));
        if (tool is null)
            return $"error: no tool named '{call.Name}'";
        try
        {
            var value = await tool.InvokeAsync(new AIFunctionArguments(call.Arguments), cancellationToken).ConfigureAwait(false);
            return value switch
            {
                null => "",
                string text => text,
                JsonElement { ValueKind: JsonValueKind.String } element => element.GetString()!,
                _ => JsonSerializer.Serialize(value),
            };
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // A failing tool is part of the run, as an agent sees it.
            return $"error: {e.Message}";
        }
    }

    // Each token's bytes in the rendered text: its piece, or for a control token (no piece) the text the markup wrote
    // for it; a BOS the tokenizer added in front of the text takes none.
    private static byte[][] TokenBytes(LlamaModel model, int[] tokens, string text)
    {
        var texts = model.File.GetStringArray("tokenizer.ggml.tokens");
        var bytes = new byte[tokens.Length][];
        for (var t = 0; t < tokens.Length; t++)
        {
            var piece = model.Vocabulary.GetBytes(tokens[t]).ToArray();
            if (piece.Length == 0 && texts is not null && tokens[t] < texts.Length)
                piece = Encoding.UTF8.GetBytes(texts[tokens[t]]);
            bytes[t] = piece;
        }
        if (tokens.Length > 0 && tokens[0] == model.Vocabulary.Bos && !text.StartsWith(Encoding.UTF8.GetString(bytes[0]), StringComparison.Ordinal))
            bytes[0] = [];
        return bytes;
    }

    internal static void Require(bool ok, string message)
    {
        if (!ok)
            throw new AgentHostException(ErrorKind.InvalidArgument, message);
    }

    private ChatPrompt Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt)
        => _format.Render(messages, _tools.Count > 0 ? [.. _tools] : null, addGenerationPrompt);

    private long Bytes(ChatPrompt prompt)
    {
        var bytes = Encoding.UTF8.GetBytes(prompt.Text);
        Require(_text.AsSpan().StartsWith(bytes), $"The {_format.Name} format renders a shorter conversation as a different text; cannot find the messages' tokens.");
        return bytes.Length;
    }
}

/// <summary>Verifiers of an agent run's outcome.</summary>
public static class AgentVerifiers
{
    /// <summary>
    /// Passes when the run (trajectory prefix and rollout, as the format writes calls) calls <paramref name="name"/>
    /// with every argument in <paramref name="arguments"/> equal to the given JSON value (other arguments are free).
    /// </summary>
    public static ITrajectoryVerifier ToolCalled(ToolCallFormat format, string name, IReadOnlyDictionary<string, JsonElement> arguments)
    {
        ArgumentNullException.ThrowIfNull(format);
        ArgumentNullException.ThrowIfNull(arguments);
        AgentRollouts.Require(!string.IsNullOrEmpty(name), "The tool name of a 'tool' verifier is empty.");
        var expected = string.Join(", ", arguments.Select(a => $"{a.Key}={a.Value.GetRawText()}"));
        return TrajectoryVerifiers.Create($"calls {name}({expected})", (_, run) => format.CreateParser([name]).ParseAll(run).OfType<FunctionCallContent>()
            .Any(call => call.Name == name && arguments.All(a => call.Arguments is { } given && given.TryGetValue(a.Key, out var value)
                && JsonElement.DeepEquals(JsonSerializer.SerializeToElement(value), a.Value))));
    }

    /// <summary>Parses <c>NAME{"arg": value, ...}</c> (a tool name and a JSON object of the arguments that must match).</summary>
    public static ITrajectoryVerifier ParseToolCalled(ToolCallFormat format, string spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var brace = spec.IndexOf('{', StringComparison.Ordinal);
        AgentRollouts.Require(brace > 0, $"A 'tool' verifier is NAME{{\"argument\": value}}, not '{spec}'.");
        Dictionary<string, JsonElement>? arguments;
        try
        {
            arguments = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(spec[brace..]);
        }
        catch (JsonException e)
        {
            throw new AgentHostException(ErrorKind.InvalidArgument, $"The arguments of the 'tool' verifier '{spec}' are not a JSON object: {e.Message}", e);
        }
        return ToolCalled(format, spec[..brace], arguments ?? []);
    }
}
