using System.Globalization;
using System.Text;
using AgentHost.Llama.Engine;
using AgentHost.Llama.Grammar;
using AgentHost.Llama.Models;
using Microsoft.Extensions.Logging;

namespace AgentHost.Llama.Decoding.Strategies;

/// <summary>How <see cref="CautiousStrategy"/> turns a step's entropy into a number of trials.</summary>
public enum TrialFormula
{
    /// <summary>The official code: <c>N = int(1 + (N_max - 1) * norm)</c> (truncation). The default.</summary>
    Code,

    /// <summary>The paper's Algorithm 1: <c>N = max(1, min(N_max, floor(norm * N_max)))</c>.</summary>
    Paper,
}

/// <summary>How <see cref="CautiousStrategy"/> picks the token ids that end a trial.</summary>
public enum StopRule
{
    /// <summary>
    /// The default: for each character c, the token that spells exactly c after a word in running text, else the
    /// vocabulary entry whose bytes are exactly c (e.g. <c>&lt;0x0A&gt;</c> for "\n"), plus the "▁c" piece when the
    /// vocabulary has one; never a whitespace-only token other than c itself. On byte-level BPE it equals the code's rule.
    /// </summary>
    RunningText,

    /// <summary>
    /// The official code's <c>encode(c)[0]</c>: on SentencePiece vocabularies with a space prefix that is the bare "▁"
    /// piece for every character, so trials run to their length limit (best-of-N over whole continuations).
    /// </summary>
    PaperCode,
}

/// <summary>Which sampler chain <see cref="CautiousStrategy"/> measures the entropy on and samples from.</summary>
public enum CautiousSampler
{
    /// <summary>
    /// The default, as the paper's code (Hugging Face <c>generate</c>): temperature, then top-k, then top-p
    /// (<see cref="SamplerChain.HuggingFace"/>), with Hugging Face's defaults where the request keeps llama.cpp's:
    /// top-k 40 becomes 50 and min-p 0.05 becomes off. Any other value is honoured.
    /// </summary>
    Paper,

    /// <summary>The plain sampler's chain and the request's values as they are (llama.cpp's order, <c>sample</c>'s draws).</summary>
    Llama,
}

/// <summary>What happened at one branching step of <see cref="CautiousStrategy"/> (one entry of <see cref="GenerationResult.Details"/>).</summary>
public sealed record CautiousStep
{
    /// <summary>Generated tokens before this step: the winner's tokens start at this index of <see cref="GenerationResult.Tokens"/>.</summary>
    public required int Position { get; init; }

    /// <summary>Entropy (nats) of the step's processed distribution.</summary>
    public required double Entropy { get; init; }

    /// <summary>Number of trials run (N).</summary>
    public required int Trials { get; init; }

    /// <summary>Index of the winning trial, 0-based (trial i decodes in sequence i + 1).</summary>
    public required int Winner { get; init; }

    /// <summary>The winner's perplexity over all its tokens, its first and its stop token included.</summary>
    public required double WinnerPerplexity { get; init; }

    /// <summary>Number of tokens the winner sampled (its stop token included); fewer are kept when a stop condition hits inside it.</summary>
    public required int WinnerLength { get; init; }

    /// <summary>Most tokens a trial of this step could sample (max tokens left, or the context's room shared by the trials).</summary>
    public required int LengthLimit { get; init; }

    /// <summary>Every trial's tokens, in trial order; only with <see cref="CautiousStrategy.RecordTrials"/>.</summary>
    public IReadOnlyList<int[]>? TrialTokens { get; init; }

    /// <summary>Every trial's perplexity, in trial order; only with <see cref="CautiousStrategy.RecordTrials"/>.</summary>
    public IReadOnlyList<double>? TrialPerplexities { get; init; }
}

/// <summary>
/// Called after each branching step of <see cref="CautiousStrategy"/>, once the winner's tokens are accepted and
/// the trial sequences removed (diagnostics and tests).
/// </summary>
/// <param name="session">The session; sequence 0 holds the prompt and the accepted tokens.</param>
/// <param name="acceptedTokens">Every token accepted so far.</param>
/// <param name="step">The step's record.</param>
/// <param name="nextLogits">Logits for the next token (empty when generation stopped in this step).</param>
public delegate void BranchingStepObserver(InferenceSession session, IReadOnlyList<int> acceptedTokens, CautiousStep step, ReadOnlySpan<float> nextLogits);

/// <summary>
/// Cautious next-token prediction (CNTP, arXiv 2507.03038), as the official code does it: at each step
/// the entropy of the processed distribution (the same sampler chain that samples) sets a number of
/// trials N; N = 1 is a plain sampling step. Otherwise N trials run from that step, each sampling until
/// right after a punctuation token, an end-of-generation token or a length limit, and the trial with
/// the lowest perplexity is appended. Trials run in parallel as sequences 1..N sharing sequence 0's
/// prefix: each round is one batched decode holding one token per live trial.
/// </summary>
/// <remarks>
/// Choices, briefly:
/// <list type="bullet">
/// <item>The N first tokens are drawn from the step's already processed distribution (no recompute).</item>
/// <item>Each trial has its own <see cref="TokenSampler"/> whose penalty history is copied from the main
/// sampler at the step, so no trial sees another's tokens; every draw (plain steps and trials) takes the
/// next number of the main sampler's seeded generator, trials in index order within a round. With N = 1
/// at every step and <see cref="CautiousSampler.Llama"/> the draws are exactly <c>sample</c>'s, so the output is token-identical.</item>
/// <item>The chain is the paper's by default (<see cref="CautiousSampler.Paper"/>: temperature before top-k and top-p, as
/// the thresholds 0.01 / 1.5 were tuned on); <see cref="CautiousSampler.Llama"/> keeps <c>sample</c>'s.</item>
/// <item>A trial's last token is decoded (and its logits kept) only when generation could go on after it;
/// then the winner's cells already hold every token and the next step needs no extra decode.</item>
/// <item>Length limit of a trial: the max tokens left, and the context's free cells divided by N (trials
/// share one unified KV cache); near the end of the context N is lowered so that each trial has a cell.</item>
/// <item>The winner's tokens go through <see cref="GenerationOutput.Accept"/> in order, so stop strings, EOG
/// and max tokens behave as in plain decoding; if one hits inside the winner, the KV cache is cut back to
/// what was accepted.</item>
/// <item>Stop ids follow <see cref="StopRule"/>: by default the tokens that spell each punctuation character
/// exactly in running text (merged tokens such as ".\n" stay non-stops, as in the code); the code's
/// <c>encode(c)[0]</c> is reachable as <see cref="StopRule.PaperCode"/>. A trial also ends when its own text holds one
/// of the request's stop strings (a stop string spanning accepted text and a trial is still caught on acceptance).</item>
/// <item>Needs <see cref="MaxTrials"/> + 1 sequences; a round's batch of at most <see cref="MaxTrials"/> tokens
/// always fits, since <see cref="LlamaModel.Load"/> refuses a batch smaller than the sequence count.</item>
/// <item>Hot path: every buffer is sized once per generation (trial samplers lazily); the only allocation
/// per branching step is its <see cref="CautiousStep"/> record.</item>
/// </list>
/// </remarks>
public sealed class CautiousStrategy : IDecodingStrategy
{
    /// <summary>Option key of the most trials.</summary>
    public const string MaxTrialsKey = "cautious_max_trials";

    /// <summary>Option key of the entropy at or below which a step has one trial.</summary>
    public const string EntropyLowKey = "cautious_entropy_low";

    /// <summary>Option key of the entropy at or above which a step has the most trials.</summary>
    public const string EntropyHighKey = "cautious_entropy_high";

    /// <summary>Option key of the formula (<c>code</c> or <c>paper</c>).</summary>
    public const string FormulaKey = "cautious_formula";

    /// <summary>Option key of the stop-id rule (<c>running-text</c> or <c>paper-code</c>).</summary>
    public const string StopRuleKey = "cautious_stop_rule";

    /// <summary>Option key of the sampler chain (<c>paper</c> or <c>llama</c>).</summary>
    public const string SamplerKey = "cautious_sampler";

    /// <summary>
    /// Option key of the preset: <c>default</c>, or <c>paper</c>, the official code's settings where the defaults differ
    /// (trial stop ids by <c>encode(c)[0]</c>); options given explicitly win.
    /// </summary>
    public const string PresetKey = "cautious_preset";

    /// <summary>Top-k of the paper's chain when the request keeps llama.cpp's default (Hugging Face's default).</summary>
    public const int PaperTopK = 50;

    /// <summary>Default most trials (the paper's N_max).</summary>
    public const int DefaultMaxTrials = 10;

    /// <summary>Default lower entropy threshold in nats (the paper's H_min).</summary>
    public const double DefaultEntropyLow = 0.01;

    /// <summary>Default upper entropy threshold in nats (the paper's H_max).</summary>
    public const double DefaultEntropyHigh = 1.5;

    private const double Epsilon = 1e-10;   // the spec's eps in ln(p + eps); also the floor of a trial token's probability

    /// <summary>The punctuation characters whose tokens end a trial (the official code's list; ids by <see cref="StopRule"/>).</summary>
    public static IReadOnlyList<string> PunctuationCharacters { get; } = [".", ",", "\n", "?", "!", ":", ";", ")", "]", "}"];

    /// <summary>The descriptor registered in <see cref="DecodingStrategies"/>.</summary>
    public static StrategyDescriptor Descriptor { get; } = new(
        "cautious",
        "Cautious next-token prediction: at uncertain steps, parallel trials to punctuation, lowest perplexity wins.",
        SamplingUse.Always,
        [
            new(MaxTrialsKey, $"Most trials at an uncertain step (default {DefaultMaxTrials}); needs max trials + 1 model sequences."),
            new(EntropyLowKey, $"Entropy in nats at or below which a step is plain sampling (default {DefaultEntropyLow.ToString(CultureInfo.InvariantCulture)})."),
            new(EntropyHighKey, $"Entropy in nats at or above which a step gets the most trials (default {DefaultEntropyHigh.ToString(CultureInfo.InvariantCulture)})."),
            new(FormulaKey, "Entropy-to-trials formula: code (default, the official code) or paper (Algorithm 1)."),
            new(StopRuleKey, "Trial stop ids: running-text (default: the token spelling each punctuation mark after a word) or paper-code (encode(c)[0], the bare space on SentencePiece)."),
            new(SamplerKey, $"Sampler chain: paper (default: temperature, top-k, top-p as Hugging Face; default top-k {PaperTopK}, no min-p) or llama (sample's chain)."),
            new(PresetKey, "default, or paper: the official code's settings where the defaults differ (stop rule paper-code); explicit options win."),
        ],
        (options, _) => FromOptions(options));

    /// <summary>Creates the strategy; throws <see cref="AgentHostException"/> for invalid values.</summary>
    /// <param name="maxTrials">Most trials (1 .. <see cref="LlamaModel.MaxSequences"/> - 1).</param>
    /// <param name="entropyLow">Entropy in nats at or below which a step has one trial (0 or more).</param>
    /// <param name="entropyHigh">Entropy in nats at or above which a step has the most trials (greater than <paramref name="entropyLow"/>).</param>
    /// <param name="formula">Entropy-to-trials formula.</param>
    /// <param name="stopRule">How the trial stop ids are picked.</param>
    /// <param name="sampler">The sampler chain the entropy is measured on and every token drawn from.</param>
    public CautiousStrategy(int maxTrials = DefaultMaxTrials, double entropyLow = DefaultEntropyLow, double entropyHigh = DefaultEntropyHigh, TrialFormula formula = TrialFormula.Code,
        StopRule stopRule = StopRule.RunningText, CautiousSampler sampler = CautiousSampler.Paper)
    {
        Require(maxTrials is >= 1 and < LlamaModel.MaxSequences, $"Option '{MaxTrialsKey}' must be a whole number from 1 to {LlamaModel.MaxSequences - 1}, not {maxTrials}.");
        Require(double.IsFinite(entropyLow) && entropyLow >= 0, $"Option '{EntropyLowKey}' must be a number of at least 0, not {entropyLow.ToString(CultureInfo.InvariantCulture)}.");
        Require(double.IsFinite(entropyHigh) && entropyHigh > entropyLow,
            $"Option '{EntropyHighKey}' ({entropyHigh.ToString(CultureInfo.InvariantCulture)}) must be greater than '{EntropyLowKey}' ({entropyLow.ToString(CultureInfo.InvariantCulture)}).");
        Require(Enum.IsDefined(formula), $"Option '{FormulaKey}' must be 'code' or 'paper'.");
        Require(Enum.IsDefined(stopRule), $"Option '{StopRuleKey}' must be 'running-text' or 'paper-code'.");
        Require(Enum.IsDefined(sampler), $"Option '{SamplerKey}' must be 'paper' or 'llama'.");
        MaxTrials = maxTrials;
        EntropyLow = entropyLow;
        EntropyHigh = entropyHigh;
        Formula = formula;
        StopRule = stopRule;
        Sampler = sampler;
    }

    /// <inheritdoc />
    public string Name => "cautious";

    /// <summary>Most trials at one step (N_max).</summary>
    public int MaxTrials { get; }

    /// <summary>Entropy in nats at or below which a step has one trial (H_min).</summary>
    public double EntropyLow { get; }

    /// <summary>Entropy in nats at or above which a step has <see cref="MaxTrials"/> trials (H_max).</summary>
    public double EntropyHigh { get; }

    /// <summary>The entropy-to-trials formula.</summary>
    public TrialFormula Formula { get; }

    /// <summary>How the trial stop ids are picked.</summary>
    public StopRule StopRule { get; }

    /// <summary>The sampler chain the entropy is measured on and every token drawn from.</summary>
    public CautiousSampler Sampler { get; }

    /// <summary>Also record every trial's tokens and perplexity in each <see cref="CautiousStep"/> (allocates per step; off by default).</summary>
    public bool RecordTrials { get; init; }

    /// <summary>Called after each branching step (diagnostics and tests); null by default.</summary>
    public BranchingStepObserver? OnBranchingStep { get; init; }

    /// <summary>
    /// Builds the strategy from its options. Thresholds parse as <see cref="float"/> and are widened through
    /// <see cref="decimal"/>, so "0.01" means the double 0.01 (the formula table is exact at the defaults).
    /// </summary>
    public static CautiousStrategy FromOptions(StrategyOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var maxTrials = options.GetInt(MaxTrialsKey, DefaultMaxTrials, min: 1, max: LlamaModel.MaxSequences - 1);
        var low = Widen(options.GetFloat(EntropyLowKey, (float)DefaultEntropyLow, min: 0), DefaultEntropyLow, options, EntropyLowKey);
        var high = Widen(options.GetFloat(EntropyHighKey, (float)DefaultEntropyHigh, min: 0), DefaultEntropyHigh, options, EntropyHighKey);
        var formula = Choose(options, FormulaKey, ("code", TrialFormula.Code), ("paper", TrialFormula.Paper));
        var paper = Choose(options, PresetKey, ("default", false), ("paper", true));
        var rule = paper && !options.Values.ContainsKey(StopRuleKey)
            ? StopRule.PaperCode
            : Choose(options, StopRuleKey, ("running-text", StopRule.RunningText), ("paper-code", StopRule.PaperCode));
        var sampler = Choose(options, SamplerKey, ("paper", CautiousSampler.Paper), ("llama", CautiousSampler.Llama));
        return new CautiousStrategy(maxTrials, low, high, formula, rule, sampler);
    }

    // The value named by option key (the first choice is the default); any other text is one clear error listing them.
    private static T Choose<T>(StrategyOptions options, string key, params (string Text, T Value)[] choices)
    {
        var text = options.GetString(key, choices[0].Text);
        foreach (var (name, value) in choices)
        {
            if (string.Equals(text, name, StringComparison.OrdinalIgnoreCase))
                return value;
        }
        throw new AgentHostException(ErrorKind.InvalidArgument, $"Option '{key}' must be {string.Join(" or ", choices.Select(c => $"'{c.Text}'"))}, not '{text}'.");
    }

    /// <summary>
    /// The sampling options this strategy samples with for a request's <paramref name="requested"/> ones (null: the
    /// defaults): as they are under <see cref="CautiousSampler.Llama"/>; under <see cref="CautiousSampler.Paper"/>,
    /// llama.cpp's default top-k and min-p become Hugging Face's (<see cref="PaperTopK"/>, off).
    /// </summary>
    public SamplingOptions SamplingFor(SamplingOptions? requested)
    {
        var options = requested ?? new SamplingOptions();
        if (Sampler == CautiousSampler.Llama)
            return options;
        var llamaDefaults = new SamplingOptions();
        return options with
        {
            TopK = options.TopK == llamaDefaults.TopK ? PaperTopK : options.TopK,
            MinP = options.MinP == llamaDefaults.MinP ? 0 : options.MinP,
        };
    }

    /// <summary>The order of the sampler steps: Hugging Face's for <see cref="CautiousSampler.Paper"/>, else llama.cpp's.</summary>
    public SamplerChain Chain => Sampler == CautiousSampler.Paper ? SamplerChain.HuggingFace : SamplerChain.LlamaCpp;

    /// <summary>Entropy in nats of a processed distribution: <c>-sum p ln(p + 1e-10)</c>, as the official code computes it.</summary>
    public static double Entropy(ReadOnlySpan<TokenCandidate> candidates)
    {
        var entropy = 0.0;
        foreach (ref readonly var candidate in candidates)
        {
            double p = candidate.Probability;
            entropy -= p * Math.Log(p + Epsilon);
        }
        return entropy;
    }

    /// <summary>Number of trials for a step of entropy <paramref name="entropy"/> (nats), by <paramref name="formula"/>.</summary>
    public static int TrialCount(double entropy, int maxTrials, double entropyLow, double entropyHigh, TrialFormula formula)
    {
        if (maxTrials < 1)
            throw new ArgumentOutOfRangeException(nameof(maxTrials), maxTrials, "At least one trial.");
        if (!(entropyHigh > entropyLow))
            throw new ArgumentException("The upper entropy threshold must exceed the lower one.", nameof(entropyHigh));
        var norm = (entropy - entropyLow) / (entropyHigh - entropyLow);
        norm = norm > 0 ? Math.Min(norm, 1) : 0;   // also maps NaN to 0
        return formula == TrialFormula.Paper
            ? Math.Max(1, Math.Min(maxTrials, (int)Math.Floor(norm * maxTrials)))
            : (int)(1 + (maxTrials - 1) * norm);
    }

    /// <summary>Index of the lowest perplexity; ties go to the lowest index.</summary>
    public static int SelectWinner(ReadOnlySpan<double> perplexities)
    {
        if (perplexities.IsEmpty)
            throw new ArgumentException("No trials.", nameof(perplexities));
        var best = 0;
        for (var i = 1; i < perplexities.Length; i++)
        {
            if (perplexities[i] < perplexities[best])
                best = i;
        }
        return best;
    }

    /// <summary>
    /// The stop ids of <paramref name="model"/> under <paramref name="rule"/> for <see cref="PunctuationCharacters"/>
    /// (distinct, in character order). A character the vocabulary cannot encode (see <see cref="InputGuard"/>) gives
    /// none. Computed once per model and rule, and logged at Debug level.
    /// </summary>
    public static IReadOnlyList<int> PunctuationIds(LlamaModel model, StopRule rule = StopRule.RunningText)
    {
        ArgumentNullException.ThrowIfNull(model);
        return Punctuation.For(model, rule).Ids;
    }

    /// <inheritdoc />
    public int SequencesWanted(int available) => MaxTrials + 1;

    /// <inheritdoc />
    public int ScratchCells(int promptTokens, int maxTokens, int batchCapacity) => MaxTrials * Math.Min(maxTokens, TrialCells);

    /// <summary>
    /// Cells the engine reserves per trial: a trial may grow to (what is left of max tokens + this budget) / trials
    /// tokens, so trials that end at punctuation within this many tokens (nearly all) are as long as on a context of
    /// their own, while a request does not hold max trials x max tokens cells.
    /// </summary>
    public const int TrialCells = 64;

    /// <inheritdoc />
    public async ValueTask<GenerationResult> GenerateAsync(InferenceSession session, GenerationRequest request, Action<string>? onText, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(request);
        GrammarConstraint.Refuse(request.Grammar, Name);
        request.RefuseTokenLevelFields(Name);
        Require(MaxTrials + 1 <= session.SequenceCount,
            $"Cautious decoding with {MaxTrials} trials needs {MaxTrials + 1} sequences, but model {session.Model.Name} has Sequences = {session.SequenceCount}; lower {MaxTrialsKey} or raise Sequences.");
        // A round's batch holds one token per trial: MaxTrials < Sequences <= BatchSize (LlamaModel.Load refuses a smaller batch).

        var run = await GenerationRun.StartAsync(session, request, onText, cancellationToken).ConfigureAwait(false);
        return await new Generation(this, session, request, run, cancellationToken).RunAsync().ConfigureAwait(false);
    }

    private static double Widen(float value, double fallback, StrategyOptions options, string key)
        => options.Values.ContainsKey(key) ? (double)(decimal)value : fallback;

    private static void Require(bool ok, string message)
    {
        if (!ok)
            throw new AgentHostException(ErrorKind.InvalidArgument, message);
    }

    // One trial of a branching step: its sampler (own penalty history), tokens, log-probability sum, the
    // logits after its last token (kept when generation could continue after it) and, with stop strings, its text.
    private sealed class Trial(TokenSampler sampler, int capacity, int vocabularySize, GenerationOutput? text)
    {
        public TokenSampler Sampler { get; } = sampler;

        public GenerationOutput? Text { get; } = text;

        public int[] Tokens { get; } = new int[capacity];

        public float[] Logits { get; } = new float[vocabularySize];

        public int Length { get; set; }

        public double LogProbability { get; set; }

        public bool Ended { get; set; }

        public bool NeedsDecode { get; set; }

        public int BatchIndex { get; set; }

        public int Last => Tokens[Length - 1];

        public double Perplexity => Math.Exp(-LogProbability / Length);
    }

    // The state of one generation; Run() is the decoding loop.
    private sealed class Generation
    {
        private readonly CautiousStrategy _strategy;
        private readonly InferenceSession _session;
        private readonly GenerationRequest _request;
        private readonly GenerationRun _run;
        private readonly CancellationToken _cancellationToken;
        private readonly Punctuation _punctuation;
        private readonly TokenVocabulary _vocabulary;
        private readonly SamplingOptions _sampling;
        private readonly TokenSampler _main;
        private readonly Trial?[] _trials;
        private readonly double[] _perplexities;
        private readonly List<CautiousStep> _steps = [];
        private int _tokensSampled;
        private int _tokensKept;
        private int _trialCount;
        private int _trialDecodeCalls;
        private int _sequentialDecodeCalls;

        public Generation(CautiousStrategy strategy, InferenceSession session, GenerationRequest request, GenerationRun run, CancellationToken cancellationToken)
        {
            _strategy = strategy;
            _session = session;
            _request = request;
            _run = run;
            _cancellationToken = cancellationToken;
            _punctuation = Punctuation.For(session.Model, strategy.StopRule);
            _vocabulary = session.Model.Vocabulary;
            _sampling = strategy.SamplingFor(request.Sampling);
            _main = new TokenSampler(_sampling, _vocabulary.Count, strategy.Chain);
            _trials = new Trial?[strategy.MaxTrials];
            _perplexities = new double[strategy.MaxTrials];
        }

        public async ValueTask<GenerationResult> RunAsync()
        {
            foreach (var token in _run.PromptTokens)
                _main.Accept(token);

            var index = _run.LogitsIndex;
            var savedLogits = -1;   // trial whose kept logits predict the next token, or -1: the session's batch index
            while (true)
            {
                _cancellationToken.ThrowIfCancellationRequested();
                var logits = savedLogits >= 0 ? _trials[savedLogits]!.Logits : _session.GetLogits(index);
                var candidates = _main.Process(logits);
                var entropy = Entropy(candidates);
                var trials = TrialCount(entropy, _strategy.MaxTrials, _strategy.EntropyLow, _strategy.EntropyHigh, _strategy.Formula);
                trials = Math.Min(trials, _session.ContextSize - _session.GetPast(0));

                if (trials <= 1)
                {
                    // Plain sampling step, exactly as SamplingStrategy.
                    var token = _main.Draw();
                    _tokensSampled++;
                    _tokensKept++;
                    index = await _run.AcceptAndDecodeAsync(token, _cancellationToken).ConfigureAwait(false);
                    if (index < 0)
                        break;
                    savedLogits = -1;
                    continue;
                }

                savedLogits = await BranchAsync(trials, entropy).ConfigureAwait(false);
                if (savedLogits < 0)
                    break;
            }

            var extra = new Dictionary<string, double>
            {
                ["branching_steps"] = _steps.Count,
                ["trials"] = _trialCount,
                ["tokens_sampled"] = _tokensSampled,
                ["tokens_kept"] = _tokensKept,
                ["trial_decode_calls"] = _trialDecodeCalls,
                ["sequential_decode_calls"] = _sequentialDecodeCalls,
            };
            return _run.Finish(_strategy.Name, _main.Seed, extra, _steps);
        }

        // One branching step of `count` trials from the main sampler's processed distribution. Returns the
        // winner (whose kept logits predict the next token), or -1 when generation stopped inside it.
        private async ValueTask<int> BranchAsync(int count, double entropy)
        {
            var past = _session.GetPast(0);
            var position = _run.Output.Tokens.Count;
            var remaining = _request.MaxTokens - position;
            var limit = Math.Min(remaining, (_session.ContextSize - past) / count);

            // First tokens: drawn in trial order from the distribution the entropy was measured on.
            var candidates = _main.Candidates;
            for (var i = 0; i < count; i++)
            {
                var trial = GetTrial(i);
                var chosen = candidates[_main.Choose(_main.NextRandom())];
                trial.Sampler.CopyHistoryFrom(_main);
                trial.Length = 0;
                trial.LogProbability = 0;
                trial.Text?.Reset();
                Append(trial, chosen.Id, chosen.Probability, limit, remaining);
                _session.CopySequence(0, i + 1);   // shares the prefix's cells (unified KV cache)
            }

            // Rounds: one batched decode of every trial's newest token, then each live trial draws its next.
            while (true)
            {
                var pending = 0;
                for (var i = 0; i < count; i++)
                    pending += _trials[i]!.NeedsDecode ? 1 : 0;
                if (pending == 0)
                    break;
                _session.ClearBatch();
                await _session.WaitForRoomAsync(pending).ConfigureAwait(false);
                for (var i = 0; i < count; i++)
                {
                    var trial = _trials[i]!;
                    if (trial.NeedsDecode)
                        trial.BatchIndex = _session.AddToBatch(trial.Last, past + trial.Length - 1, i + 1, logits: true);
                }
                await _session.DecodeAsync(_cancellationToken).ConfigureAwait(false);
                _trialDecodeCalls++;

                for (var i = 0; i < count; i++)
                {
                    var trial = _trials[i]!;
                    if (!trial.NeedsDecode)
                        continue;
                    var logits = _session.GetLogits(trial.BatchIndex);
                    if (trial.Ended)
                    {
                        logits.CopyTo(trial.Logits);
                        trial.NeedsDecode = false;
                        continue;
                    }
                    var distribution = trial.Sampler.Process(logits);
                    var chosen = distribution[trial.Sampler.Choose(_main.NextRandom())];
                    Append(trial, chosen.Id, chosen.Probability, limit, remaining);
                }
            }

            var sampled = 0;
            for (var i = 0; i < count; i++)
            {
                _perplexities[i] = _trials[i]!.Perplexity;
                sampled += _trials[i]!.Length;
            }
            var winnerIndex = SelectWinner(_perplexities.AsSpan(0, count));
            var winner = _trials[winnerIndex]!;
            _tokensSampled += sampled;
            _sequentialDecodeCalls += sampled;
            _trialCount += count;

            // KV: sequence 0 takes the winner's cells after the prefix; every trial sequence goes.
            _session.CopySequence(winnerIndex + 1, 0, past);
            for (var i = 0; i < count; i++)
                _session.RemoveSequence(i + 1);

            var stopped = false;
            for (var k = 0; k < winner.Length && !stopped; k++)
            {
                var token = winner.Tokens[k];
                _main.Accept(token);
                _tokensKept++;
                stopped = _run.Output.Accept(token);
            }
            if (stopped)
                _session.RemoveSequence(0, _run.PromptTokens.Length + _run.Output.Tokens.Count);   // cut back to what was accepted

            var step = new CautiousStep
            {
                Position = position,
                Entropy = entropy,
                Trials = count,
                Winner = winnerIndex,
                WinnerPerplexity = _perplexities[winnerIndex],
                WinnerLength = winner.Length,
                LengthLimit = limit,
                TrialTokens = _strategy.RecordTrials ? RecordTokens(count) : null,
                TrialPerplexities = _strategy.RecordTrials ? _perplexities[..count] : null,
            };
            _steps.Add(step);
            _request.Trace?.Add(new BranchEvent(position, entropy, RecordTokens(count), _perplexities[..count], winnerIndex, _run.Output.Tokens.Count - position));
            _strategy.OnBranchingStep?.Invoke(_session, _run.Output.Tokens, step, stopped ? [] : winner.Logits);
            return stopped ? -1 : winnerIndex;
        }

        // Adds a sampled token to a trial. The trial ends right after a punctuation id, an EOG token, a token that
        // completes a stop string or its length limit; its last token still needs a decode when generation could
        // continue after it.
        private void Append(Trial trial, int token, float probability, int limit, int remaining)
        {
            trial.Tokens[trial.Length++] = token;
            // A zero probability is only possible through the draw's rounding fallback; floored so the perplexity stays finite.
            trial.LogProbability += Math.Log(Math.Max(probability, Epsilon));
            trial.Sampler.Accept(token);
            var endOfGeneration = _vocabulary.IsEndOfGeneration(token);
            var stopString = !endOfGeneration && trial.Text is { } text && text.Accept(token);
            trial.Ended = endOfGeneration || stopString || _punctuation.IsStop(token) || trial.Length >= limit;
            trial.NeedsDecode = !trial.Ended || (!endOfGeneration && trial.Length < remaining);
        }

        private Trial GetTrial(int i)
            => _trials[i] ??= new Trial(new TokenSampler(_sampling, _vocabulary.Count, _strategy.Chain), Math.Min(_request.MaxTokens, _session.ContextSize), _vocabulary.Count,
                _request.Stop.Count > 0 ? new GenerationOutput(_vocabulary, int.MaxValue, _request.Stop, onText: null) : null);

        private int[][] RecordTokens(int count)
        {
            var tokens = new int[count][];
            for (var i = 0; i < count; i++)
                tokens[i] = _trials[i]!.Tokens[.._trials[i]!.Length];
            return tokens;
        }
    }

    // The model's punctuation stop ids under one rule, computed once per model and rule (LlamaModel.GetState) and
    // logged at Debug level.
    private sealed class Punctuation
    {
        private readonly bool[] _isStop;

        private Punctuation(LlamaModel model, StopRule rule)
        {
            _isStop = new bool[model.Vocabulary.Count];
            var ids = new List<int>();
            var log = new StringBuilder();
            foreach (var character in PunctuationCharacters)
            {
                var printable = character == "\n" ? "\\n" : character;
                var encodable = model.Vocabulary.Guard.CanEncode(Rune.GetRuneAt(character, 0));
                var found = rule == StopRule.PaperCode
                    ? (encodable && model.Tokenize(character, addBos: false) is [var first, ..] ? [first] : [])
                    : RunningTextIds(model, character, encodable);
                log.Append(CultureInfo.InvariantCulture, $" '{printable}'=");
                log.Append(found.Length == 0 ? "none" : string.Join('+', found));
                foreach (var id in found)
                {
                    if (!_isStop[id])
                    {
                        _isStop[id] = true;
                        ids.Add(id);
                    }
                }
            }
            Ids = ids;
            var ruleName = rule == StopRule.PaperCode ? "paper-code" : "running-text";
            model.LoggerFactory.CreateLogger<CautiousStrategy>().LogDebug("Cautious decoding on model {Name}: punctuation stop ids ({Rule}){Ids}.", model.Name, ruleName, log.ToString());
        }

        public IReadOnlyList<int> Ids { get; }

        public static Punctuation For(LlamaModel model, StopRule rule) => rule == StopRule.PaperCode
            ? model.GetState(static m => new PaperCodeRule(m)).Value
            : model.GetState(static m => new RunningTextRule(m)).Value;

        public bool IsStop(int token) => _isStop[token];

        // The token spelling exactly c after a word, else the vocabulary entry whose bytes are exactly c; plus "▁c".
        // Comparing bytes with c (or " " + c) also keeps out the bare space piece and every other whitespace token.
        private static int[] RunningTextIds(LlamaModel model, string character, bool encodable)
        {
            var vocabulary = model.Vocabulary;
            var exact = Encoding.UTF8.GetBytes(character);
            var spaced = Encoding.UTF8.GetBytes(" " + character);
            var id = encodable && model.TokenizeAfterWord(character) is [var single] && vocabulary.GetBytes(single).SequenceEqual(exact) ? single : -1;
            var spacedId = -1;
            for (var token = 0; token < vocabulary.Count && (id < 0 || spacedId < 0); token++)
            {
                var bytes = vocabulary.GetBytes(token);
                if (id < 0 && bytes.SequenceEqual(exact))
                    id = token;
                else if (spacedId < 0 && !char.IsWhiteSpace(character[0]) && bytes.SequenceEqual(spaced))
                    spacedId = token;
            }
            return (id, spacedId) switch
            {
                ( < 0, < 0) => [],
                ( >= 0, < 0) => [id],
                ( < 0, _) => [spacedId],
                _ => [id, spacedId],
            };
        }

        // One state type per rule: LlamaModel.GetState keeps one instance per type.
        private sealed class RunningTextRule(LlamaModel model)
        {
            public Punctuation Value { get; } = new(model, StopRule.RunningText);
        }

        private sealed class PaperCodeRule(LlamaModel model)
        {
            public Punctuation Value { get; } = new(model, StopRule.PaperCode);
        }
    }
}
