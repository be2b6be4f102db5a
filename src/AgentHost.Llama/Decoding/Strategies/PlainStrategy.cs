using AgentHost.Llama.Engine;
using AgentHost.Llama.Grammar;

namespace AgentHost.Llama.Decoding.Strategies;

/// <summary>
/// One token per decode: pick a token from the last logits, stop or decode it, repeat. Greedy and
/// sampling differ only in how they pick; a request's grammar restricts the pick to the tokens it
/// allows. The loop is the hot path: no allocation, no LINQ, logits read in place from native memory.
/// </summary>
public abstract class PlainStrategy : IDecodingStrategy
{
    /// <inheritdoc />
    public abstract string Name { get; }

    /// <inheritdoc />
    public async ValueTask<GenerationResult> GenerateAsync(InferenceSession session, GenerationRequest request, Action<string>? onText, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(request);
        request = request.ForRun();
        // Loaded before the prefill so that a grammar llama.cpp cannot parse fails fast.
        using var grammar = request.Grammar is { } constraint ? GrammarSampler.Create(session.Model, constraint, cancellationToken) : null;
        var run = await GenerationRun.StartAsync(session, request, onText, cancellationToken).ConfigureAwait(false);
        var sampler = CreateSampler(request, session.Model.Vocabulary.Count, run.PromptTokens);
        // Opt-in per request: without logit_bias or logprobs the loop reads the native logits and nothing more.
        var recorder = request.Recorder;
        var bias = request.LogitBias;
        var biased = bias is null ? null : new float[session.Model.Vocabulary.Count];
        for (var index = run.LogitsIndex; index >= 0;)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var raw = session.GetLogits(index);
            var logits = raw;
            if (biased is not null)
            {
                raw.CopyTo(biased);
                LogitBias.Apply(bias!, biased);
                logits = biased;
            }
            int token;
            if (grammar is null)
            {
                token = sampler is null ? TokenSampler.ArgMax(logits) : sampler.Sample(logits);
            }
            else
            {
                request.Trace?.Grammar(run.Output.Tokens.Count, grammar.IsTriggered);
                token = grammar.Choose(logits, sampler);
                grammar.Accept(token);
            }
            if (recorder is not null && !run.Output.IsEnd(token))
                recorder.Record(raw, token);
            index = await run.AcceptAndDecodeAsync(token, cancellationToken).ConfigureAwait(false);
        }
        return run.Finish(Name, sampler?.Seed, grammar is null ? null : GrammarStats(grammar));
    }

    // Whether the grammar was switched on and completed: generation can also end on max tokens or a stop string.
    private static Dictionary<string, double> GrammarStats(GrammarSampler grammar) => new()
    {
        ["grammar_triggered"] = grammar.IsTriggered ? 1 : 0,
        ["grammar_complete"] = grammar.IsComplete ? 1 : 0,
    };

    /// <summary>The sampler for this request, or null to take the argmax.</summary>
    protected abstract TokenSampler? CreateSampler(GenerationRequest request, int vocabularySize, ReadOnlySpan<int> promptTokens);
}

/// <summary>Always the most likely token: deterministic, the reference for lossless strategies.</summary>
public sealed class GreedyStrategy : PlainStrategy
{
    /// <inheritdoc />
    public override string Name => "greedy";

    /// <inheritdoc />
    protected override TokenSampler? CreateSampler(GenerationRequest request, int vocabularySize, ReadOnlySpan<int> promptTokens) => null;
}

/// <summary>Temperature / top-k / top-p / min-p / penalties sampling with a seed.</summary>
public sealed class SamplingStrategy : PlainStrategy
{
    /// <inheritdoc />
    public override string Name => "sample";

    /// <inheritdoc />
    protected override TokenSampler? CreateSampler(GenerationRequest request, int vocabularySize, ReadOnlySpan<int> promptTokens)
    {
        var sampler = new TokenSampler(request.Sampling ?? new SamplingOptions(), vocabularySize);
        foreach (var token in promptTokens)
            sampler.Accept(token);
        return sampler;
    }
}
