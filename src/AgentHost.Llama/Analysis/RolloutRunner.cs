using AgentHost.Llama.Decoding;
using AgentHost.Llama.Engine;
using AgentHost.Llama.Models;

namespace AgentHost.Llama.Analysis;

/// <summary>One completion to sample: condition on the first <paramref name="ContextLength"/> context tokens; never draw <paramref name="Excluded"/> first (-1: none).</summary>
internal readonly record struct RolloutJob(int ContextLength, int Excluded);

/// <summary>
/// Samples completions of prefixes of one context (prompt + trajectory) held in sequence 0, as parallel
/// sequences sharing that prefix: every job of a round copies sequence 0's cells up to its prefix into its own
/// sequence, the prefix's last token is decoded once for all jobs of that prefix (one shared batch entry), then
/// each round decodes one token per live sequence. A completion ends at EOG, a stop string or max tokens
/// (<see cref="GenerationOutput"/>'s rules). A job's excluded first token is drawn from the raw softmax at
/// temperature 1 (no top-k, top-p or min-p), as the paper draws alternatives; every other draw uses the rollout
/// sampling. Runs on the model's scheduler thread.
/// </summary>
internal sealed class RolloutRunner : IDisposable
{
    private readonly InferenceSession _session;
    private readonly SamplingOptions _sampling;
    private readonly int _maxTokens;
    private readonly IReadOnlyList<string> _stopStrings;
    private InferenceSession? _continuationSession;   // agent runs: later turns, on a session of their own (sequence 0 here holds the context)
    private ulong _generations;
    private readonly int[] _context;
    private readonly TokenSampler _sampler;
    private readonly TokenSampler _raw;
    private readonly float[] _masked;
    private readonly GenerationOutput[] _outputs;
    private readonly int[] _batchIndex;

    public RolloutRunner(InferenceSession session, int[] context, SamplingOptions sampling, int maxTokens, IReadOnlyList<string> stopStrings, CancellationToken cancellationToken,
        IReadOnlyList<int>? stopTokens = null)
    {
        _session = session;
        _context = context;
        _sampling = sampling;
        _maxTokens = maxTokens;
        _stopStrings = stopStrings;
        StopTokens = stopTokens ?? [];
        var vocabulary = session.Model.Vocabulary;
        _sampler = new TokenSampler(sampling, vocabulary.Count);
        // Only its distribution is used: every random number comes from _sampler, so one seed reproduces the run.
        _raw = new TokenSampler(new SamplingOptions { Temperature = 1, TopK = 0, TopP = 1, MinP = 0, Seed = sampling.Seed }, vocabulary.Count);
        _masked = new float[vocabulary.Count];

        if (session.SequenceCount < 2)
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Rollouts run as parallel sequences, but model {session.Model.Name} has Sequences = {session.SequenceCount}; set it to 2 or more.");
        // Sequence 0 keeps the context's cells; each rollout needs at most MaxTokens cells of its own (its shared
        // prefix token included, its last sampled token never decoded).
        var free = session.ContextSize - context.Length;
        Capacity = Math.Min(session.SequenceCount - 1, free / maxTokens);
        if (Capacity < 1)
        {
            throw new AgentHostException(ErrorKind.ContextOverflow,
                $"Prompt and trajectory take {context.Length} of the context's {session.ContextSize} tokens, leaving no room for a rollout of {maxTokens} tokens; lower max tokens or raise ContextSize.");
        }

        _outputs = new GenerationOutput[Capacity];
        for (var i = 0; i < Capacity; i++)
            _outputs[i] = new GenerationOutput(vocabulary, maxTokens, stopStrings, onText: null, StopTokens);
        _batchIndex = new int[Capacity];

        session.Reset();
        session.Prefill(context, 0, cancellationToken);
    }

    /// <summary>Context tokens before the trajectory's (the prompt's length; set by the analyzer).</summary>
    public int PromptLength { get; init; }

    /// <summary>Token ids that also end a completion (an agent's turn end).</summary>
    public IReadOnlyList<int> StopTokens { get; }

    /// <summary>
    /// Samples one completion of a whole new context (an agent's later turn) with the rollout sampling, on a session of
    /// its own; seeded from the run's seed and a counter, so a seed reproduces the run. Not on the scheduler thread.
    /// </summary>
    public async ValueTask<string> Generate(IReadOnlyList<int> context, IReadOnlyList<int> stopTokens, CancellationToken cancellationToken)
    {
        _continuationSession ??= await _session.Model.CreateSessionAsync(cancellationToken).ConfigureAwait(false);
        var result = await _continuationSession.GenerateAsync(new Decoding.Strategies.SamplingStrategy(), new GenerationRequest
        {
            Prompt = "",
            PromptTokens = context,
            MaxTokens = _maxTokens,
            Stop = _stopStrings,
            StopTokens = [.. StopTokens, .. stopTokens],
            Sampling = _sampling with { Seed = unchecked(_sampling.Seed!.Value + 0x9E3779B97F4A7C15UL * ++_generations) },
        }, cancellationToken: cancellationToken).ConfigureAwait(false);
        return result.Text;
    }

    /// <inheritdoc />
    public void Dispose() => _continuationSession?.Dispose();

    /// <summary>Most jobs per round.</summary>
    public int Capacity { get; }

    /// <summary>The seed of the draws.</summary>
    public ulong Seed => _sampler.Seed;

    /// <summary>Tokens sampled so far.</summary>
    public long TokensSampled { get; private set; }

    /// <summary>
    /// Samples one completion per job (at most <see cref="Capacity"/>; jobs with the same context length must be
    /// adjacent). Draws happen in job order within each round, so a seed reproduces the run.
    /// </summary>
    public (int[] Tokens, string Text, StopReason Stop)[] RunRound(ReadOnlySpan<RolloutJob> jobs, CancellationToken cancellationToken)
    {
        if (jobs.Length > Capacity)
            throw new ArgumentException($"At most {Capacity} jobs per round.", nameof(jobs));

        // Shared prefixes: sequence j + 1 copies the cells of its prefix but the last token, which is decoded once
        // per group of jobs with the same prefix, into all of their sequences.
        _session.ClearBatch();
        for (var start = 0; start < jobs.Length;)
        {
            var length = jobs[start].ContextLength;
            var end = start;
            while (end < jobs.Length && jobs[end].ContextLength == length)
                end++;
            var sequences = new int[end - start];
            for (var j = start; j < end; j++)
            {
                _session.CopySequence(0, j + 1, 0, length - 1);
                sequences[j - start] = j + 1;
            }
            var index = _session.AddToBatch(_context[length - 1], length - 1, sequences, logits: true);
            for (var j = start; j < end; j++)
                _batchIndex[j] = index;
            start = end;
        }
        _session.Decode(cancellationToken);
        for (var j = 0; j < jobs.Length; j++)
        {
            _outputs[j].Reset();
            Append(j, Draw(_session.GetLogits(_batchIndex[j]), jobs[j].Excluded));
        }

        // One token per live sequence per decode.
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            _session.ClearBatch();
            var pending = 0;
            for (var j = 0; j < jobs.Length; j++)
            {
                var output = _outputs[j];
                if (output.IsStopped)
                    continue;
                _batchIndex[j] = _session.AddToBatch(output.Tokens[^1], jobs[j].ContextLength + output.Tokens.Count - 1, j + 1, logits: true);
                pending++;
            }
            if (pending == 0)
                break;
            _session.Decode(cancellationToken);
            for (var j = 0; j < jobs.Length; j++)
            {
                if (!_outputs[j].IsStopped)
                    Append(j, Draw(_session.GetLogits(_batchIndex[j]), -1));
            }
        }

        var results = new (int[], string, StopReason)[jobs.Length];
        for (var j = 0; j < jobs.Length; j++)
        {
            _session.RemoveSequence(j + 1);
            var output = _outputs[j];
            results[j] = ([.. output.Tokens], output.Complete(), output.StopReason!.Value);
        }
        _session.ClearBatch();
        return results;
    }

    private void Append(int job, int token)
    {
        TokensSampled++;
        _outputs[job].Accept(token);
    }

    // Draws from the rollout distribution, or with an excluded token from the raw softmax at temperature 1 where the
    // excluded token gets probability 0 (its logit -inf, the rest renormalised) and is skipped even by the rounding
    // fallback, so it can never be drawn.
    private int Draw(ReadOnlySpan<float> logits, int excluded)
    {
        var sampler = _sampler;
        var source = logits;
        if (excluded >= 0)
        {
            logits.CopyTo(_masked);
            _masked[excluded] = float.NegativeInfinity;
            source = _masked;
            sampler = _raw;
        }
        var candidates = sampler.Process(source);
        var target = _sampler.NextRandom();
        var cumulative = 0.0;
        var fallback = -1;
        for (var i = 0; i < candidates.Length; i++)
        {
            var candidate = candidates[i];
            if (candidate.Id == excluded || candidate.Probability <= 0)
                continue;
            fallback = candidate.Id;
            cumulative += candidate.Probability;
            if (target < cumulative)
                return candidate.Id;
        }
        return fallback >= 0 ? fallback : throw new InvalidOperationException("No token left to draw once the original token is excluded.");
    }
}
