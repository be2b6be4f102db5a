using System.Diagnostics;
using System.Runtime.CompilerServices;
using AgentHost.Llama.Engine;

namespace AgentHost.Llama.Decoding;

/// <summary>
/// The part of a generation every strategy shares: validate the request, tokenize the prompt (through
/// the input guard), check it fits the context, reset the session to sequence 0 and prefill it; then
/// collect output and assemble the result with common statistics.
/// </summary>
public sealed class GenerationRun
{
    private readonly Stopwatch _clock;
    private readonly int _decodeCallsAtStart;

    private readonly TokenLogprobRecorder? _recorder;

    private GenerationRun(InferenceSession session, int[] promptTokens, GenerationOutput output, int logitsIndex, Stopwatch clock, int decodeCallsAtStart, TimeSpan prefillTime, int cachedPromptTokens,
        TokenLogprobRecorder? recorder)
    {
        _recorder = recorder;
        CachedPromptTokens = cachedPromptTokens;
        Session = session;
        PromptTokens = promptTokens;
        Output = output;
        LogitsIndex = logitsIndex;
        _clock = clock;
        _decodeCallsAtStart = decodeCallsAtStart;
        PrefillTime = prefillTime;
    }

    /// <summary>The session (sequence 0 holds the prompt).</summary>
    public InferenceSession Session { get; }

    /// <summary>The prompt's tokens.</summary>
    public int[] PromptTokens { get; }

    /// <summary>Accepted tokens and stop conditions.</summary>
    public GenerationOutput Output { get; }

    /// <summary>Batch index of the prompt's last token, whose logits predict the first new token.</summary>
    public int LogitsIndex { get; }

    /// <summary>Prompt tokens kept from the session's cache (not decoded again).</summary>
    public int CachedPromptTokens { get; }

    /// <summary>Time the prefill took.</summary>
    public TimeSpan PrefillTime { get; }

    /// <summary>Whether sequence 0 has no room for another token.</summary>
    public bool ContextIsFull => Session.GetPast(0) >= Session.ContextSize;

    /// <summary>Validates, tokenizes and prefills. Throws <see cref="AgentHostException"/> for bad input.</summary>
    public static ValueTask<GenerationRun> StartAsync(InferenceSession session, GenerationRequest request, Action<string>? onText, CancellationToken cancellationToken)
        => StartAsync(session, request, onText, 1, null, cancellationToken);

    /// <summary>
    /// Like <see cref="StartAsync(InferenceSession, GenerationRequest, Action{string}, CancellationToken)"/>, with outputs for the
    /// last <paramref name="promptOutputs"/> prompt tokens (decoded again even when cached) passed to <paramref name="onPromptOutput"/>
    /// by batch index, in text order; the last one is also <see cref="LogitsIndex"/>.
    /// </summary>
    public static async ValueTask<GenerationRun> StartAsync(InferenceSession session, GenerationRequest request, Action<string>? onText, int promptOutputs, Action<int>? onPromptOutput,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(request);
        request.Validate();
        request.ValidateFor(session.Model.Vocabulary.Count);
        cancellationToken.ThrowIfCancellationRequested();

        var clock = Stopwatch.StartNew();
        var model = session.Model;
        var tokens = request.PromptTokens is { } given ? [.. given] : model.Tokenize(request.Prompt, model.Vocabulary.AddBos);
        if (tokens.Length >= session.ContextSize)
        {
            throw new AgentHostException(ErrorKind.ContextOverflow,
                $"The prompt is {tokens.Length} tokens but the context holds {session.ContextSize}; shorten it or raise ContextSize.");
        }

        promptOutputs = Math.Clamp(promptOutputs, 1, tokens.Length);
        var cached = request.ReusePrefix ? KeepCommonPrefix(session, tokens, promptOutputs) : 0;
        if (cached == 0)
            session.Reset();
        var decodeCalls = session.DecodeCalls;
        var index = await session.PrefillAsync(tokens.AsMemory(cached), 0, promptOutputs, onPromptOutput, cancellationToken).ConfigureAwait(false);
        var output = new GenerationOutput(model.Vocabulary, request.MaxTokens, request.Stop, onText, request.StopTokens);
        return new GenerationRun(session, tokens, output, index, clock, decodeCalls, clock.Elapsed, cached, request.Recorder);
    }

    /// <summary>
    /// Keeps the longest prefix sequence 0 shares with <paramref name="tokens"/>, at most all but the
    /// last <paramref name="outputs"/> tokens (their outputs are needed), and drops everything else; returns the kept length.
    /// </summary>
    private static int KeepCommonPrefix(InferenceSession session, int[] tokens, int outputs)
    {
        var held = session.GetTokens(0);
        var common = held.CommonPrefixLength(tokens);
        common = Math.Min(common, tokens.Length - outputs);
        if (common == 0)
            return 0;
        session.KeepSequence(0);
        session.RemoveSequence(0, common);
        session.ClearBatch();
        return common;
    }

    /// <summary>
    /// Accepts one token into the output; true when generation must stop (a stop condition, or no room
    /// left in the context for another token).
    /// </summary>
    public bool Accept(int token)
    {
        if (Output.Accept(token))
            return true;
        if (!ContextIsFull)
            return false;
        Output.StopFor(StopReason.ContextFull);
        return true;
    }

    /// <summary>
    /// The plain step: accepts <paramref name="token"/> and, unless generation stops, decodes it into
    /// sequence 0. Returns the batch index of its logits, or -1 when generation stopped.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]   // one per token: pooled, not allocated, when it waits for the engine
    public async ValueTask<int> AcceptAndDecodeAsync(int token, CancellationToken cancellationToken)
    {
        if (Accept(token))
            return -1;
        Session.ClearBatch();
        await Session.WaitForRoomAsync(1).ConfigureAwait(false);
        var index = Session.AddToBatch(token, Session.GetPast(0), 0, logits: true);
        await Session.DecodeAsync(cancellationToken).ConfigureAwait(false);
        return index;
    }

    /// <summary>Completes the text and assembles the result.</summary>
    public GenerationResult Finish(string strategy, ulong? seed = null, IReadOnlyDictionary<string, double>? extra = null, object? details = null)
    {
        var text = Output.Complete();
        _clock.Stop();
        if (Session.IsShared)
        {
            // How many requests the decodes of this request held on average.
            var withBatch = new Dictionary<string, double>(extra ?? new Dictionary<string, double>()) { ["mean_batch"] = Math.Round(Session.MeanBatchRequests, 3) };
            extra = withBatch;
        }
        return new GenerationResult
        {
            Strategy = strategy,
            Tokens = Output.Tokens,
            Text = text,
            StopReason = Output.StopReason ?? StopReason.MaxTokens,
            Details = details,
            Logprobs = _recorder?.All,
            Stats = new GenerationStats
            {
                PromptTokens = PromptTokens.Length,
                CachedPromptTokens = CachedPromptTokens,
                GeneratedTokens = Output.Tokens.Count,
                DecodeCalls = Session.DecodeCalls - _decodeCallsAtStart,
                PrefillTime = PrefillTime,
                Elapsed = _clock.Elapsed,
                Seed = seed,
                Extra = extra ?? new Dictionary<string, double>(),
            },
        };
    }
}
