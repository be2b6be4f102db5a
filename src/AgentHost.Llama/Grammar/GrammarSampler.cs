using System.Text;
using AgentHost.Llama.Decoding;
using AgentHost.Llama.Models;

namespace AgentHost.Llama.Grammar;

/// <summary>
/// Constrains token choice to a <see cref="GrammarConstraint"/> with llama.cpp's grammar sampler: it
/// masks the tokens the grammar does not allow (end-of-generation only once the grammar is complete)
/// and must see every token the generation accepts. One instance per generation, on one thread.
/// llama.cpp aborts the process when a token the grammar rejects is accepted, so <see cref="Accept"/>
/// checks every token first and throws instead.
/// </summary>
public sealed class GrammarSampler : IDisposable
{
    private readonly GrammarNative.SamplerHandle _handle;
    private readonly TokenVocabulary _vocabulary;
    private readonly string _modelName;
    private readonly GrammarNative.TokenData[] _all;   // the whole vocabulary, for masking
    private readonly GrammarNative.TokenData[] _one = new GrammarNative.TokenData[1];
    private readonly float[] _masked;
    private readonly byte[][] _triggers;                // UTF-8 trigger words (lazy grammars)
    private readonly bool[] _triggerTokens = [];        // by token id (lazy grammars)
    private readonly byte[] _recent = [];               // the last bytes of the output, shorter than the longest trigger
    private readonly byte[] _scratch = [];
    private int _recentLength;
    private int _checkedToken = -1;                     // the token the grammar was last seen to allow

    private GrammarSampler(GrammarNative.SamplerHandle handle, LlamaModel model, GrammarConstraint constraint)
    {
        _handle = handle;
        _vocabulary = model.Vocabulary;
        _modelName = model.Name;
        _all = new GrammarNative.TokenData[_vocabulary.Count];
        _masked = new float[_vocabulary.Count];
        _triggers = new byte[constraint.TriggerWords.Count][];
        IsTriggered = !constraint.IsLazy;
        if (constraint.IsLazy)
        {
            _triggerTokens = new bool[_vocabulary.Count];
            foreach (var token in constraint.TriggerTokens)
            {
                if (token >= _triggerTokens.Length)
                    throw new AgentHostException(ErrorKind.InvalidArgument, $"Grammar trigger token {token} is not in model {model.Name}'s vocabulary of {_triggerTokens.Length}.");
                _triggerTokens[token] = true;
            }
            var longest = 1;
            for (var i = 0; i < _triggers.Length; i++)
            {
                _triggers[i] = Encoding.UTF8.GetBytes(constraint.TriggerWords[i]);
                longest = Math.Max(longest, _triggers[i].Length);
            }
            var longestPiece = 0;
            for (var token = 0; token < _vocabulary.Count; token++)
                longestPiece = Math.Max(longestPiece, _vocabulary.GetBytes(token).Length);
            _recent = new byte[longest - 1];
            _scratch = new byte[longest - 1 + longestPiece];
        }
    }

    /// <summary>Whether the grammar constrains the output (always, unless lazy and no trigger word came yet).</summary>
    public bool IsTriggered { get; private set; }

    /// <summary>Whether the output so far is a complete match of the grammar (end of generation allowed).</summary>
    public bool IsComplete => IsTriggered && _vocabulary.Eos >= 0 && Allows(_vocabulary.Eos);

    /// <summary>
    /// Loads <paramref name="constraint"/> for <paramref name="model"/>'s vocabulary. A grammar llama.cpp
    /// cannot parse (or without its root rule), or beyond <see cref="GrammarLimits"/>, is an
    /// <see cref="AgentHostException"/> saying why; it is checked in managed code before llama.cpp sees it.
    /// </summary>
    public static GrammarSampler Create(LlamaModel model, GrammarConstraint constraint, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(constraint);
        constraint.Validate(cancellationToken);
        GrammarNative.EnsureResolver();
        var vocab = GrammarNative.GetVocab(model.Weights.NativeHandle);
        // What the managed check lets through llama.cpp parses; its other refusals (e.g. left recursion) go to its log.
        var handle = NativeRuntime.CaptureErrors(() => GrammarNative.InitGrammar(vocab, constraint.Gbnf, constraint.Root), out var logged);
        if (handle.IsInvalid)
        {
            handle.Dispose();
            var reason = logged.Length == 0 ? "" : ": " + string.Join(' ', logged.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
            throw new AgentHostException(ErrorKind.InvalidArgument, $"llama.cpp cannot use the grammar (root rule '{constraint.Root}'){reason}");
        }
        return new GrammarSampler(handle, model, constraint);
    }

    /// <summary>
    /// Chooses the next token from <paramref name="logits"/> among those the grammar allows: the most
    /// likely one when <paramref name="sampler"/> is null, else a draw from the sampler's distribution
    /// over the allowed tokens (recorded in its penalty history). Call <see cref="Accept"/> with it next.
    /// </summary>
    public int Choose(ReadOnlySpan<float> logits, TokenSampler? sampler)
    {
        if (logits.Length != _masked.Length)
            throw new ArgumentException($"Expected {_masked.Length} logits, got {logits.Length}.", nameof(logits));
        if (!IsTriggered)
            return ChooseBeforeTrigger(logits, sampler);

        if (sampler is null)
        {
            // Usually the most likely token is allowed: one check instead of masking the vocabulary.
            var best = TokenSampler.ArgMax(logits);
            if (Allows(best))
                return best;
        }
        Mask(logits);
        var token = TokenSampler.ArgMax(_masked);
        if (float.IsNegativeInfinity(_masked[token]))
        {
            throw new AgentHostException(ErrorKind.InvalidArgument,
                $"The grammar allows no token of model {_modelName} here: its vocabulary cannot spell what the grammar requires next.");
        }
        if (sampler is not null)
            token = sampler.Sample(_masked);
        _checkedToken = token;
        return token;
    }

    /// <summary>
    /// Advances the grammar by <paramref name="token"/> (before the trigger: watches for it). Throws
    /// <see cref="InvalidOperationException"/> for a token the grammar does not allow.
    /// </summary>
    public void Accept(int token)
    {
        if (!IsTriggered)
        {
            var end = AppendToRecent(token, out var triggerEnd);
            if (triggerEnd >= 0 && triggerEnd != end && !_triggerTokens[token])
                throw new InvalidOperationException($"Token {token} runs past a trigger word; choose tokens with Choose.");
            if (triggerEnd == end || _triggerTokens[token])
                IsTriggered = true;
            return;
        }
        if (token != _checkedToken && !Allows(token))
            throw new InvalidOperationException($"Token {token} is not allowed by the grammar here.");
        _checkedToken = -1;
        GrammarNative.Accept(_handle, token);
    }

    /// <summary>Whether the grammar allows <paramref name="token"/> next (always true before the trigger).</summary>
    public unsafe bool Allows(int token)
    {
        if (!IsTriggered)
            return true;
        _one[0] = new GrammarNative.TokenData { Id = token };
        fixed (GrammarNative.TokenData* data = _one)
        {
            var array = new GrammarNative.TokenDataArray { Data = data, Size = 1, Selected = -1 };
            GrammarNative.Apply(_handle, &array);
        }
        var allowed = !float.IsNegativeInfinity(_one[0].Logit);
        if (allowed)
            _checkedToken = token;
        return allowed;
    }

    /// <summary>Frees the native grammar.</summary>
    public void Dispose() => _handle.Dispose();

    /// <summary>
    /// Sets the logits of tokens the grammar does not allow next to negative infinity, in place (for callers
    /// that choose the token themselves, e.g. tool tokens' argument mode). Call <see cref="Accept"/> with the choice.
    /// </summary>
    public void MaskInPlace(Span<float> logits)
    {
        if (logits.Length != _masked.Length)
            throw new ArgumentException($"Expected {_masked.Length} logits, got {logits.Length}.", nameof(logits));
        if (!IsTriggered)
            return;
        Mask(logits);
        _masked.CopyTo(logits);
    }

    private unsafe void Mask(ReadOnlySpan<float> logits)
    {
        for (var i = 0; i < _all.Length; i++)
            _all[i] = new GrammarNative.TokenData { Id = i, Logit = logits[i] };
        fixed (GrammarNative.TokenData* data = _all)
        {
            var array = new GrammarNative.TokenDataArray { Data = data, Size = (nuint)_all.Length, Selected = -1 };
            GrammarNative.Apply(_handle, &array);
        }
        for (var i = 0; i < _all.Length; i++)
            _masked[i] = _all[i].Logit;
    }

    // Before the trigger the text is free, except that the token completing a trigger word must end with
    // it: the grammar then starts exactly after the word. A token running past the word is set aside and
    // the choice repeated (for sampling this draws from the distribution without it).
    private int ChooseBeforeTrigger(ReadOnlySpan<float> logits, TokenSampler? sampler)
    {
        var source = logits;
        var copied = false;
        while (true)
        {
            int token;
            if (sampler is null)
            {
                token = TokenSampler.ArgMax(source);
            }
            else
            {
                sampler.Process(source);
                token = sampler.Candidates[sampler.Choose(sampler.NextRandom())].Id;
            }
            if (float.IsNegativeInfinity(source[token]))
                throw new AgentHostException(ErrorKind.InvalidArgument, $"Every token of model {_modelName} runs past a grammar trigger word here.");
            var end = AppendToScratch(token, out var triggerEnd);
            if (triggerEnd < 0 || triggerEnd == end || _triggerTokens[token])
            {
                sampler?.Accept(token);
                return token;
            }
            if (!copied)
            {
                logits.CopyTo(_masked);
                source = _masked;
                copied = true;
            }
            _masked[token] = float.NegativeInfinity;
        }
    }

    // Writes the recent bytes plus the token's bytes into the scratch buffer; returns their length and
    // the end of the first trigger word found in them (-1: none). Allocation-free.
    private int AppendToScratch(int token, out int triggerEnd)
    {
        var piece = _vocabulary.GetBytes(token);
        _recent.AsSpan(0, _recentLength).CopyTo(_scratch);
        piece.CopyTo(_scratch.AsSpan(_recentLength));
        var length = _recentLength + piece.Length;
        var text = _scratch.AsSpan(0, length);
        triggerEnd = -1;
        foreach (var trigger in _triggers)
        {
            var at = text.IndexOf(trigger);
            if (at >= 0 && (triggerEnd < 0 || at + trigger.Length < triggerEnd))
                triggerEnd = at + trigger.Length;
        }
        return length;
    }

    private int AppendToRecent(int token, out int triggerEnd)
    {
        var length = AppendToScratch(token, out triggerEnd);
        var keep = Math.Min(length, _recent.Length);
        _scratch.AsSpan(length - keep, keep).CopyTo(_recent);
        _recentLength = keep;
        return length;
    }
}
