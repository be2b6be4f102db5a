namespace AgentHost.Llama.Decoding;

/// <summary>A candidate token with its (processed) logit and probability.</summary>
public struct TokenCandidate
{
    /// <summary>Token id.</summary>
    public int Id;

    /// <summary>Logit after penalties.</summary>
    public float Logit;

    /// <summary>Probability after every step of the chain (sums to 1 over the candidates).</summary>
    public float Probability;
}

/// <summary>The order of a <see cref="TokenSampler"/>'s steps (after the penalties, before the draw).</summary>
public enum SamplerChain
{
    /// <summary>llama.cpp's: top-k, top-p and min-p on the distribution at temperature 1, temperature last. The default.</summary>
    LlamaCpp,

    /// <summary>
    /// Hugging Face's warpers (<c>generate(do_sample=True)</c>): temperature first, then top-k, top-p and min-p on the
    /// tempered distribution. The cut sets differ from <see cref="LlamaCpp"/>'s when the temperature is not 1.
    /// </summary>
    HuggingFace,
}

/// <summary>
/// Managed sampler over a logits span, by default in llama.cpp's order: penalties, top-k, top-p, min-p,
/// temperature, then a seeded draw (<see cref="SamplerChain"/> offers Hugging Face's order). <see cref="Process"/> exposes the final distribution, so a
/// strategy can inspect it (entropy, alternatives) and then <see cref="Draw"/> from it.
/// Allocation-free per token: every buffer is sized once for the vocabulary.
/// </summary>
public sealed class TokenSampler
{
    private readonly SamplingOptions _options;
    private readonly SamplerChain _chain;
    private readonly float[] _work;
    private readonly TokenCandidate[] _candidates;
    private readonly int[] _counts;         // occurrences of each token in the penalty window
    private readonly int[] _appliedStamp;   // marks tokens already penalised in this step
    private readonly int[] _window;         // ring buffer of the last PenaltyLastN tokens
    private int _windowCount;
    private int _windowNext;
    private int _step;
    private int _candidateCount;
    private ulong _state;

    /// <summary>Creates a sampler for a vocabulary of <paramref name="vocabularySize"/> tokens.</summary>
    /// <param name="options">The sampling knobs.</param>
    /// <param name="vocabularySize">Number of logits per step.</param>
    /// <param name="chain">The order of the steps; llama.cpp's by default.</param>
    public TokenSampler(SamplingOptions options, int vocabularySize, SamplerChain chain = SamplerChain.LlamaCpp)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (!Enum.IsDefined(chain))
            throw new ArgumentOutOfRangeException(nameof(chain), chain, "Unknown sampler chain.");
        _options = options;
        _chain = chain;
        Seed = options.Seed ?? (ulong)Random.Shared.NextInt64();
        _state = Seed;
        _work = new float[vocabularySize];
        _candidates = new TokenCandidate[vocabularySize];
        _counts = new int[vocabularySize];
        _appliedStamp = new int[vocabularySize];
        _window = new int[Math.Max(options.PenaltyLastN, 1)];
    }

    /// <summary>The seed in use.</summary>
    public ulong Seed { get; }

    /// <summary>The candidates of the last <see cref="Process"/>, most likely first.</summary>
    public ReadOnlySpan<TokenCandidate> Candidates => _candidates.AsSpan(0, _candidateCount);

    /// <summary>Processes <paramref name="logits"/> and draws a token.</summary>
    public int Sample(ReadOnlySpan<float> logits)
    {
        Process(logits);
        return Draw();
    }

    /// <summary>Runs the chain (penalties .. temperature) and returns the final distribution, most likely first.</summary>
    public ReadOnlySpan<TokenCandidate> Process(ReadOnlySpan<float> logits)
    {
        if (logits.Length != _work.Length)
            throw new ArgumentException($"Expected {_work.Length} logits, got {logits.Length}.", nameof(logits));

        ReadOnlySpan<float> source = logits;
        if (_options.HasPenalties && _windowCount > 0)
        {
            logits.CopyTo(_work);
            ApplyPenalties(_work);
            source = _work;
        }

        if (_options.Temperature <= 0)
        {
            _candidates[0] = new TokenCandidate { Id = ArgMax(source), Probability = 1 };
            _candidates[0].Logit = source[_candidates[0].Id];
            _candidateCount = 1;
            return Candidates;
        }

        // Top-k keeps the same set at any temperature; top-p and min-p see temperature 1 (llama.cpp) or the
        // tempered distribution (Hugging Face); the last softmax renormalises the kept set at the temperature.
        SelectTopK(source);
        Softmax(_chain == SamplerChain.HuggingFace ? _options.Temperature : 1.0f);
        ApplyTopP();
        ApplyMinP();
        Softmax(_options.Temperature);
        return Candidates;
    }

    /// <summary>Draws a token from the last processed distribution and records it for the penalties.</summary>
    public int Draw()
    {
        var chosen = _candidates[Choose(NextRandom())].Id;
        Accept(chosen);
        return chosen;
    }

    /// <summary>
    /// Advances the seeded generator and returns a number in [0, 1): the number <see cref="Draw"/> uses.
    /// With <see cref="Choose"/> it lets several samplers (e.g. parallel trials, each with its own penalty
    /// history) draw from this one generator in a fixed order.
    /// </summary>
    public double NextRandom() => NextDouble();

    /// <summary>
    /// Index in <see cref="Candidates"/> of the candidate that <paramref name="target"/> (in [0, 1)) selects
    /// by cumulative probability, exactly as <see cref="Draw"/> selects; records nothing.
    /// </summary>
    public int Choose(double target)
    {
        if (_candidateCount == 0)
            throw new InvalidOperationException("Process logits before drawing.");
        var cumulative = 0.0;
        for (var i = 0; i < _candidateCount; i++)
        {
            cumulative += _candidates[i].Probability;
            if (target < cumulative)
                return i;
        }
        // Rounding left the sum just below target: take the last candidate that can be drawn at all
        // (one masked to -infinity, e.g. by a grammar, has probability 0 and must never be chosen).
        var last = _candidateCount - 1;
        while (last > 0 && _candidates[last].Probability <= 0)
            last--;
        return last;
    }

    /// <summary>
    /// Replaces this sampler's penalty history (the last <see cref="SamplingOptions.PenaltyLastN"/> tokens)
    /// with a copy of <paramref name="source"/>'s, so that a branch continues from the same state without
    /// sharing it. Costs O(PenaltyLastN), no allocation. Both samplers must have the same options.
    /// </summary>
    public void CopyHistoryFrom(TokenSampler source)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (source._window.Length != _window.Length || source._counts.Length != _counts.Length)
            throw new ArgumentException("The samplers differ in vocabulary size or penalty window.", nameof(source));
        if (!_options.HasPenalties)
            return;
        for (var i = 0; i < _windowCount; i++)
            _counts[_window[i]] = 0;
        Array.Copy(source._window, _window, source._windowCount);
        for (var i = 0; i < source._windowCount; i++)
            _counts[_window[i]] = source._counts[_window[i]];
        _windowCount = source._windowCount;
        _windowNext = source._windowNext;
    }

    /// <summary>Records a token chosen elsewhere (e.g. the prompt, or a verified draft) for the penalties.</summary>
    public void Accept(int token)
    {
        if (!_options.HasPenalties)
            return;
        if (_windowCount == _window.Length)
            _counts[_window[_windowNext]]--;
        else
            _windowCount++;
        _window[_windowNext] = token;
        _counts[token]++;
        _windowNext = (_windowNext + 1) % _window.Length;
    }

    /// <summary>Index of the largest logit (the lowest index wins a tie).</summary>
    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        var best = 0;
        var bestValue = logits[0];
        for (var i = 1; i < logits.Length; i++)
        {
            if (logits[i] > bestValue)
            {
                bestValue = logits[i];
                best = i;
            }
        }
        return best;
    }

    private void ApplyPenalties(float[] logits)
    {
        _step++;
        for (var i = 0; i < _windowCount; i++)
        {
            var token = _window[i];
            if (_appliedStamp[token] == _step)
                continue;
            _appliedStamp[token] = _step;
            var count = _counts[token];
            ref var logit = ref logits[token];
            logit = logit > 0 ? logit / _options.RepeatPenalty : logit * _options.RepeatPenalty;
            logit -= count * _options.FrequencyPenalty + _options.PresencePenalty;
        }
    }

    private void SelectTopK(ReadOnlySpan<float> logits)
    {
        var k = _options.TopK <= 0 || _options.TopK >= logits.Length ? logits.Length : _options.TopK;
        var candidates = _candidates.AsSpan(0, k);
        if (k == logits.Length)
        {
            for (var i = 0; i < logits.Length; i++)
                candidates[i] = new TokenCandidate { Id = i, Logit = logits[i] };
        }
        else
        {
            // Min-heap of the k largest: O(n log k), no allocation.
            for (var i = 0; i < k; i++)
                candidates[i] = new TokenCandidate { Id = i, Logit = logits[i] };
            for (var i = k / 2 - 1; i >= 0; i--)
                SiftDown(candidates, i);
            for (var i = k; i < logits.Length; i++)
            {
                if (logits[i] > candidates[0].Logit)
                {
                    candidates[0] = new TokenCandidate { Id = i, Logit = logits[i] };
                    SiftDown(candidates, 0);
                }
            }
        }
        candidates.Sort(static (a, b) => b.Logit != a.Logit ? b.Logit.CompareTo(a.Logit) : a.Id.CompareTo(b.Id));
        _candidateCount = k;
    }

    private static void SiftDown(Span<TokenCandidate> heap, int i)
    {
        while (true)
        {
            var left = 2 * i + 1;
            if (left >= heap.Length)
                return;
            var smallest = left + 1 < heap.Length && heap[left + 1].Logit < heap[left].Logit ? left + 1 : left;
            if (heap[smallest].Logit >= heap[i].Logit)
                return;
            (heap[i], heap[smallest]) = (heap[smallest], heap[i]);
            i = smallest;
        }
    }

    private void Softmax(float temperature)
    {
        var candidates = _candidates.AsSpan(0, _candidateCount);
        var max = candidates[0].Logit;
        var sum = 0.0;
        for (var i = 0; i < candidates.Length; i++)
        {
            var p = Math.Exp((candidates[i].Logit - max) / temperature);
            candidates[i].Probability = (float)p;
            sum += p;
        }
        for (var i = 0; i < candidates.Length; i++)
            candidates[i].Probability = (float)(candidates[i].Probability / sum);
    }

    private void ApplyTopP()
    {
        if (_options.TopP >= 1)
            return;
        var cumulative = 0.0;
        for (var i = 0; i < _candidateCount; i++)
        {
            cumulative += _candidates[i].Probability;
            if (cumulative >= _options.TopP)
            {
                _candidateCount = i + 1;
                return;
            }
        }
    }

    private void ApplyMinP()
    {
        if (_options.MinP <= 0)
            return;
        var threshold = _candidates[0].Probability * _options.MinP;
        var keep = 1;
        while (keep < _candidateCount && _candidates[keep].Probability >= threshold)
            keep++;
        _candidateCount = keep;
    }

    // SplitMix64: small, fast and identical on every platform, so a seed reproduces a run anywhere.
    private double NextDouble()
    {
        var z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return (z >> 11) * (1.0 / (1UL << 53));
    }
}
