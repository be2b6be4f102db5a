using AgentHost.Llama.Decoding;
using AgentHost.Llama.Engine;
using Microsoft.Extensions.Logging;

namespace AgentHost.Llama.ToolTokens;

/// <summary>Settings of <see cref="ToolTokenStrategy"/>.</summary>
public sealed record ToolTokenOptions
{
    /// <summary>Overrides the head's bias (added to every tool score); null keeps the head's.</summary>
    public float? Bias { get; init; }

    /// <summary>Most tokens of one call's arguments.</summary>
    public int MaxArgumentTokens { get; init; } = 24;

    /// <summary>Candidates of a step kept for backing off when a call fails (the papers keep the top 5).</summary>
    public int BackoffCandidates { get; init; } = 5;

    /// <summary>How argument mode is constrained; the default handles numeric arguments.</summary>
    public IArgumentConstraintFactory ArgumentConstraints { get; init; } = JsonSchemaArgumentConstraints.Default;

    /// <summary>
    /// Argument demonstrations by tool name (ToolkenGPT's <c>templates[op]</c>), before those of the tool definitions
    /// (<see cref="ToolDefinition.ArgumentPrompt"/>) and the head file (<see cref="ToolTokenSlot.ArgumentPrompt"/>).
    /// </summary>
    public IReadOnlyDictionary<string, string>? ArgumentPrompts { get; init; }

    /// <summary>
    /// ToolkenGPT's argument mode: after the tool's demonstrations the model writes freely until <c>)</c>
    /// (<see cref="PaperArgumentConstraints"/>); the head's bias is the task's (set when training with the preset).
    /// </summary>
    public static ToolTokenOptions Paper { get; } = new() { ArgumentConstraints = PaperArgumentConstraints.Instance };
}

/// <summary>One tool call made during a generation.</summary>
/// <param name="Tool">Tool name.</param>
/// <param name="Arguments">Arguments JSON (empty when argument mode failed).</param>
/// <param name="Result">The tool's result, or null when the call failed.</param>
/// <param name="Position">Index in the generated tokens where the result starts (or the call was tried).</param>
/// <param name="Error">Why the call failed, or null.</param>
public sealed record ToolTokenCall(string Tool, string Arguments, string? Result, int Position, string? Error);

/// <summary>
/// Tool tokens (ToolkenGPT, with TokenLearning's priors): at each step the head's scores <c>W h + bias</c>
/// are appended to the vocabulary logits and greedy choice or sampling runs over the union. When a tool
/// token wins, argument mode starts on a copy of the sequence: the call start <c>name(</c> is decoded, the
/// arguments are generated under the argument constraint (tool tokens never enter the model) until the call
/// closes, the tool runs, its result is put into the text, and the next token is generated with digit tokens
/// (and tools) masked so the model does not repeat the number. A failed call backs off to the next-best
/// token of that step. With no tools, or a bias of negative infinity, the output equals the base model's.
/// </summary>
public sealed class ToolTokenStrategy : IDecodingStrategy
{
    /// <summary>The strategy's name.</summary>
    public const string StrategyName = "toolkens";

    /// <summary>Option key of the head file (from <c>toolkens train</c>).</summary>
    public const string HeadKey = "toolkens_head";

    /// <summary>Option key overriding the head's bias on tool scores.</summary>
    public const string BiasKey = "toolkens_bias";

    /// <summary>Option key of the preset: <c>paper</c> runs ToolkenGPT's argument mode (<see cref="ToolTokenOptions.Paper"/>).</summary>
    public const string PresetKey = "toolkens_preset";

    /// <summary>Option key of a folder of argument demonstrations, one file <c>TOOL.txt</c> per tool (<see cref="ToolTokenDemonstrations"/>).</summary>
    public const string DemonstrationsKey = "toolkens_demonstrations";

    // Heads by full path, reloaded when the file changes: a request names a head, and loading one reads the whole file.
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, (DateTime Written, ToolTokenHead Head)> _heads = new(StringComparer.Ordinal);

    /// <summary>The descriptor registered in <see cref="DecodingStrategies"/>: the head from its option, its tools from the host.</summary>
    public static StrategyDescriptor Descriptor { get; } = new(
        StrategyName,
        "Tool tokens: a trained head fires the host's tools from inside decoding (greedy, or sampling with sampling options).",
        SamplingUse.Optional,
        [
            new(HeadKey, "Tool-token head file (from 'toolkens train'); its tools come from the host.", NamesFile: true, Required: true),
            new(BiasKey, "Override the head's bias on tool scores."),
            new(PresetKey, "paper: ToolkenGPT's argument mode (the tool's demonstrations, free text until ')'); default: constrained arguments."),
            new(DemonstrationsKey, "Folder of argument demonstrations, TOOL.txt per tool (before the tools' and the head's own).", NamesFile: true),
        ],
        FromOptions)
    {
        NeedsHiddenStates = true,
        CallsTools = true,
    };

    private readonly ToolTokenHead _head;
    private readonly IReadOnlyList<ToolDefinition> _tools;
    private readonly ToolTokenOptions _options;
    private readonly int _argumentPromptTokens;   // at most: a token per UTF-8 byte of the longest demonstration, and BOS

    /// <summary>Creates the strategy; a head that does not belong to <paramref name="tools"/> is refused.</summary>
    public ToolTokenStrategy(ToolTokenHead head, IReadOnlyList<ToolDefinition> tools, ToolTokenOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(head);
        ArgumentNullException.ThrowIfNull(tools);
        options ??= new ToolTokenOptions();
        if (options.MaxArgumentTokens < 1 || options.BackoffCandidates < 1)
            throw new AgentHostException(ErrorKind.InvalidArgument, "MaxArgumentTokens and BackoffCandidates must be at least 1.");
        head.EnsureMatches(tools);
        _head = options.Bias is { } bias ? head.WithBias(bias) : head;
        _tools = tools;
        _options = options;
        _argumentPromptTokens = Enumerable.Range(0, tools.Count).Select(i => ArgumentPromptOf(i) is { } prompt ? System.Text.Encoding.UTF8.GetByteCount(prompt) + 1 : 0).DefaultIfEmpty(0).Max();
    }

    /// <inheritdoc />
    public string Name => StrategyName;

    // Demonstrations for tool i: the options', else the tool definition's, else the head file's.
    private string? ArgumentPromptOf(int i)
        => _options.ArgumentPrompts?.GetValueOrDefault(_tools[i].Name) ?? _tools[i].ArgumentPrompt ?? _head.Tools[i].ArgumentPrompt;

    private static ToolTokenStrategy FromOptions(StrategyOptions options, StrategyContext context)
    {
        var file = options.GetString(HeadKey, "");
        if (string.IsNullOrWhiteSpace(file))
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Option '{HeadKey}' must name a head file (from 'toolkens train').");
        string path;
        try
        {
            path = Path.GetFullPath(file);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Option '{HeadKey}' is not a usable path: {e.Message}", e);
        }
        var bias = options.GetFloat(BiasKey);
        var preset = options.GetString(PresetKey, "default");
        if (preset is not ("default" or ToolTokenPaper.PresetName))
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Option '{PresetKey}' must be default or {ToolTokenPaper.PresetName}, not '{preset}'.");
        var written = File.GetLastWriteTimeUtc(path);
        var head = _heads.TryGetValue(path, out var cached) && cached.Written == written ? cached.Head : ToolTokenHead.Load(path);
        _heads[path] = (written, head);
        var resolve = context.ResolveTools
            ?? throw new AgentHostException(ErrorKind.InvalidArgument, $"Strategy {StrategyName} fires the host's tools, and this host offers none.");
        var demonstrations = options.GetString(DemonstrationsKey, "") is { Length: > 0 } folder
            ? ToolTokenDemonstrations.Load(folder, [.. head.Tools.Select(t => t.Name)])
            : null;
        var settings = preset == ToolTokenPaper.PresetName ? ToolTokenOptions.Paper : new ToolTokenOptions();
        return new ToolTokenStrategy(head, resolve([.. head.Tools.Select(t => t.Name)]), settings with { Bias = bias, ArgumentPrompts = demonstrations });
    }

    /// <inheritdoc />
    public int SequencesWanted(int available) => _tools.Count > 0 ? 2 : 1;

    /// <inheritdoc />
    public int ScratchCells(int promptTokens, int maxTokens, int batchCapacity)   // argument mode may prefill a demonstration and the whole text again
        => _tools.Count == 0 ? 0 : (int)Math.Min(int.MaxValue, (long)promptTokens + maxTokens + _options.MaxArgumentTokens + _argumentPromptTokens);

    /// <inheritdoc />
    public async ValueTask<GenerationResult> GenerateAsync(InferenceSession session, GenerationRequest request, Action<string>? onText, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(request);
        request.RefuseTokenLevelFields(Name);
        ToolTokenDataset.RequireHiddenStates(session);
        var model = session.Model;
        _head.EnsureMatches(model);
        if (_tools.Count > 0 && session.SequenceCount < 2)
            throw new AgentHostException(ErrorKind.InvalidArgument, "Tool tokens need a second sequence for argument mode; load the model with Sequences >= 2.");
        foreach (var tool in _tools)
            _options.ArgumentConstraints.Create(tool, model); // refuses tools it cannot constrain, before any output

        // The head reads the hidden states of the text so far: the prompt's last tokens (its context window) come from the prefill.
        var context = _head.CreateContext();
        var run = await GenerationRun.StartAsync(session, request, onText, Math.Max(1, _head.ContextWindow), i => context.Push(session.GetHiddenState(i)), cancellationToken).ConfigureAwait(false);
        var state = new RunState(this, run, request, context, cancellationToken);
        var index = run.LogitsIndex;
        while (index >= 0)
        {
            cancellationToken.ThrowIfCancellationRequested();
            index = await state.StepAsync(index).ConfigureAwait(false);
        }

        var extra = new Dictionary<string, double>
        {
            ["tool_calls"] = state.Calls.Count(c => c.Error is null),
            ["failed_tool_calls"] = state.Calls.Count(c => c.Error is not null),
        };
        return run.Finish(Name, state.Sampler?.Seed, extra, state.Calls);
    }

    /// <summary>The per-generation buffers and the loop's steps.</summary>
    private sealed class RunState
    {
        private readonly ToolTokenStrategy _owner;
        private readonly GenerationRun _run;
        private readonly InferenceSession _session;
        private readonly CancellationToken _cancellationToken;
        private readonly int _vocabulary;
        private readonly float[] _union;
        private readonly float[] _argumentLogits;
        private readonly bool[] _hasDigit;
        private readonly int[][] _callStart;
        private readonly int[]?[] _argumentPrompt;
        private readonly int[] _candidates;
        private readonly ILogger _logger;
        private readonly ToolTokenContext _context;
        private readonly float[] _features;
        private bool _afterCall;
        private int _promptInTemplate;   // prompt tokens a [QUESTION] demonstration already holds
        private bool _pushed = true;   // the prefill pushed the prompt's last token
        private readonly DecodingTrace? _trace;

        public RunState(ToolTokenStrategy owner, GenerationRun run, GenerationRequest request, ToolTokenContext context, CancellationToken cancellationToken)
        {
            _owner = owner;
            _run = run;
            _trace = request.Trace;
            _context = context;
            _features = new float[context.FeatureSize];
            _session = run.Session;
            _cancellationToken = cancellationToken;
            var model = _session.Model;
            _logger = model.LoggerFactory.CreateLogger<ToolTokenStrategy>();
            _vocabulary = model.Vocabulary.Count;
            var tools = owner._tools.Count;
            _union = new float[_vocabulary + tools];
            _argumentLogits = new float[_vocabulary];
            _candidates = new int[Math.Min(owner._options.BackoffCandidates, _union.Length)];
            _hasDigit = new bool[_vocabulary];
            for (var token = 0; token < _vocabulary; token++)
            {
                foreach (var b in model.Vocabulary.GetBytes(token))
                    _hasDigit[token] |= b is >= (byte)'0' and <= (byte)'9';
            }
            _callStart = new int[tools][];
            _argumentPrompt = new int[tools][];
            for (var i = 0; i < tools; i++)
            {
                _callStart[i] = model.Tokenize(owner._tools[i].Name + "(", addBos: false);
                if (owner.ArgumentPromptOf(i) is { Length: > 0 } prompt)
                    _argumentPrompt[i] = ArgumentPromptTokens(prompt, run.PromptTokens);
            }
            if (request.Sampling is { } sampling)
            {
                Sampler = new TokenSampler(sampling, _union.Length);
                foreach (var token in run.PromptTokens)
                    Sampler.Accept(token);
            }
        }

        public TokenSampler? Sampler { get; }

        /// <summary>
        /// The demonstrations' tokens; as in ToolkenGPT's templates, <c>[QUESTION]</c> stands for the prompt, which then
        /// is not repeated before the text generated so far (<see cref="GenerateArgumentsAsync"/> drops that many tokens).
        /// </summary>
        private int[] ArgumentPromptTokens(string prompt, IReadOnlyList<int> promptTokens)
        {
            var model = _session.Model;
            var at = prompt.IndexOf(ToolTokenDemonstrations.QuestionPlaceholder, StringComparison.Ordinal);
            if (at < 0)
                return model.Tokenize(prompt, model.Vocabulary.AddBos);
            var question = promptTokens.Count > 0 && promptTokens[0] == model.Vocabulary.Bos ? promptTokens.Skip(1) : promptTokens;
            _promptInTemplate = promptTokens.Count;
            return [.. model.Tokenize(prompt[..at], model.Vocabulary.AddBos), .. question,
                .. model.Tokenize(prompt[(at + ToolTokenDemonstrations.QuestionPlaceholder.Length)..], addBos: false)];
        }

        public List<ToolTokenCall> Calls { get; } = [];

        /// <summary>One step from the logits at <paramref name="index"/>; returns the next index, or -1 when generation stopped.</summary>
        public async ValueTask<int> StepAsync(int index)
        {
            var chosen = Choose(index);
            if (chosen < _vocabulary)
                return await _run.AcceptAndDecodeAsync(chosen, _cancellationToken).ConfigureAwait(false);

            // A tool won: try it, and on failure the next-best candidates of this step.
            var count = TopCandidates(_union, chosen);
            for (var c = 0; c < count; c++)
            {
                var candidate = _candidates[c];
                if (candidate < _vocabulary)
                    return await _run.AcceptAndDecodeAsync(candidate, _cancellationToken).ConfigureAwait(false);
                var (called, next) = await TryCallAsync(candidate - _vocabulary).ConfigureAwait(false);
                if (called)
                    return next;
            }
            // Every kept candidate was a failing tool: fall back to the best vocabulary token.
            return await _run.AcceptAndDecodeAsync(TokenSampler.ArgMax(_union.AsSpan(0, _vocabulary)), _cancellationToken).ConfigureAwait(false);
        }

        /// <summary>Scores the tools beside the vocabulary from the logits at <paramref name="index"/>; returns the choice (a tool: vocabulary size + its index).</summary>
        private int Choose(int index)
        {
            var union = _union.AsSpan();
            _session.GetLogits(index).CopyTo(union);
            var tools = union[_vocabulary..];
            if (!_pushed)
                _context.Push(_session.GetHiddenState(index));
            _pushed = false;
            _context.Write(_features);
            _owner._head.Score(_features, tools);
            if (_afterCall)
            {
                // ToolkenGPT: one token with digits masked after a result, so the number is not repeated; no call right after a call either.
                for (var token = 0; token < _vocabulary; token++)
                {
                    if (_hasDigit[token])
                        union[token] = float.NegativeInfinity;
                }
                tools.Fill(float.NegativeInfinity);
                _afterCall = false;
            }

            return Sampler is null ? TokenSampler.ArgMax(union) : Sampler.Sample(union);
        }

        /// <summary>Fills _candidates with <paramref name="first"/> and then the best other entries of <paramref name="scores"/>, best first.</summary>
        private int TopCandidates(ReadOnlySpan<float> scores, int first)
        {
            _candidates[0] = first;
            var count = 1;
            while (count < _candidates.Length)
            {
                var best = -1;
                for (var i = 0; i < scores.Length; i++)
                {
                    if (float.IsNegativeInfinity(scores[i]) || _candidates.AsSpan(0, count).Contains(i))
                        continue;
                    if (best < 0 || scores[i] > scores[best])
                        best = i;
                }
                if (best < 0)
                    break;
                _candidates[count++] = best;
            }
            return count;
        }

        /// <summary>Generates the arguments, calls the tool and decodes its result; (false, _) when it backs off.</summary>
        private async ValueTask<(bool Called, int Next)> TryCallAsync(int toolIndex)
        {
            var tool = _owner._tools[toolIndex];
            var position = _run.Output.Tokens.Count;
            var (generated, arguments, error) = await GenerateArgumentsAsync(toolIndex).ConfigureAwait(false);
            if (!generated)
                return (Fail(tool, arguments, position, error), -1);

            string result;
            try
            {
                // The tool may call this same model (a prompt plugin on it): other work on the model goes on while it runs.
                result = await _session.WaitForAsync(() => tool.Invoke(tool.Name, arguments, _cancellationToken), _cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                return (Fail(tool, arguments, position, $"the tool failed: {e.Message}"), -1);
            }

            var inserted = ResultTokens(result);
            if (inserted.Length == 0)
                return (Fail(tool, arguments, position, "the result is empty"), -1);
            if (_session.GetPast(0) + inserted.Length >= _session.ContextSize)
                return (Fail(tool, arguments, position, "no room in the context for the result"), -1);
            Calls.Add(new ToolTokenCall(tool.Name, arguments, result, position, null));
            _trace?.Add(new ToolTokenEvent(position, tool.Name, arguments, result, null));

            _session.ClearBatch();
            await _session.WaitForRoomAsync(inserted.Length).ConfigureAwait(false);
            var start = _session.GetPast(0);
            var first = -1;
            var next = -1;
            for (var i = 0; i < inserted.Length; i++)
            {
                Sampler?.Accept(inserted[i]);
                if (_run.Accept(inserted[i]))
                    return (true, -1);   // what was added waits for the next decode, which the session's end never needs
                // Outputs for every result token: their hidden states enter the head's context window.
                next = _session.AddToBatch(inserted[i], start + i, 0, logits: true);
                if (first < 0)
                    first = next;
            }
            await _session.DecodeAsync(_cancellationToken).ConfigureAwait(false);
            for (var i = first; i < next; i++)
                _context.Push(_session.GetHiddenState(i));   // the last one is pushed by the next step
            _afterCall = true;
            return (true, next);
        }

        private bool Fail(ToolDefinition tool, string arguments, int position, string error)
        {
            _logger.LogDebug("Tool token {Tool} backed off: {Error}.", tool.Name, error);
            Calls.Add(new ToolTokenCall(tool.Name, arguments, null, position, error));
            _trace?.Add(new ToolTokenEvent(position, tool.Name, arguments, null, error));
            return false;
        }

        /// <summary>
        /// Argument mode on sequence 1: a copy of sequence 0 (or, with an argument prompt, that prompt followed by
        /// sequence 0's text) plus "name(", then constrained greedy tokens until the call closes.
        /// </summary>
        private async ValueTask<(bool Generated, string Arguments, string Error)> GenerateArgumentsAsync(int toolIndex)
        {
            var tool = _owner._tools[toolIndex];
            var callStart = _callStart[toolIndex];
            var prompt = _argumentPrompt[toolIndex];
            var text = _session.GetTokens(0).ToArray();
            var bos = _session.Model.Vocabulary.Bos;
            if (prompt is not null && _promptInTemplate > 0)
                text = text[Math.Min(_promptInTemplate, text.Length)..];
            else if (prompt is not null && text.Length > 0 && text[0] == bos)
                text = text[1..];
            var past = prompt is null ? _session.GetPast(0) : prompt.Length + text.Length;
            if (past + callStart.Length + _owner._options.MaxArgumentTokens >= _session.ContextSize)
                return (false, "", "no room in the context for the call");
            var constraint = _owner._options.ArgumentConstraints.Create(tool, _session.Model);
            _session.RemoveSequence(1);
            try
            {
                int index;
                if (prompt is null)
                {
                    _session.CopySequence(0, 1);
                    index = await _session.PrefillAsync(callStart, 1, _cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    index = await _session.PrefillAsync((int[])[.. prompt, .. text, .. callStart], 1, _cancellationToken).ConfigureAwait(false);
                }
                var position = _session.GetPast(1);
                var generated = new List<int>();
                for (var n = 0; n < _owner._options.MaxArgumentTokens; n++)
                {
                    var token = ChooseArgumentToken(index, constraint);
                    if (token < 0)
                        return (false, "", "no token fits the arguments");
                    constraint.Accept(token);
                    generated.Add(token);
                    if (constraint.IsComplete)
                    {
                        try
                        {
                            return (true, constraint.ArgumentsJson, "");
                        }
                        catch (FormatException e)
                        {
                            // Free-text argument modes (the paper's) may write what does not parse: the call fails and backs off.
                            return (false, "", $"the arguments do not parse: {e.Message}");
                        }
                    }
                    _session.ClearBatch();
                    await _session.WaitForRoomAsync(1).ConfigureAwait(false);
                    index = _session.AddToBatch(token, position++, 1, logits: true);
                    await _session.DecodeAsync(_cancellationToken).ConfigureAwait(false);
                }
                return (false, "", $"the arguments did not close within {_owner._options.MaxArgumentTokens} tokens: '{tool.Name}({_session.Model.Detokenize(generated.ToArray())}'");
            }
            finally
            {
                _session.RemoveSequence(1);
                _session.ClearBatch();
            }
        }

        /// <summary>The constrained greedy argument token from the logits at <paramref name="index"/>, or -1 when none fits.</summary>
        private int ChooseArgumentToken(int index, IArgumentConstraint constraint)
        {
            var logits = _argumentLogits.AsSpan();
            _session.GetLogits(index).CopyTo(logits);
            constraint.Mask(logits);
            var token = TokenSampler.ArgMax(logits);
            return float.IsNegativeInfinity(logits[token]) ? -1 : token;
        }

        /// <summary>The tokens of the result as a new word (" 7"), tokenized the way the text around it tokenizes.</summary>
        private int[] ResultTokens(string result) => _session.Model.TokenizeAfterWord(" " + result.Trim());
    }
}
