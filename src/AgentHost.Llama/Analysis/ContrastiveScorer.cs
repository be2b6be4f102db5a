using System.Diagnostics;
using AgentHost.Llama.Decoding;
using AgentHost.Llama.Engine;
using AgentHost.Llama.Models;

namespace AgentHost.Llama.Analysis;

/// <summary>
/// One side of a contrast: a model, optionally with a LoRA adapter applied (two adapters on one base model make
/// a positive and a negative side that share the vocabulary by construction).
/// </summary>
/// <param name="Model">The (base) model.</param>
/// <param name="LoraPath">A LoRA adapter GGUF for the model, or null.</param>
/// <param name="LoraScale">The adapter's scale.</param>
public sealed record ContrastiveSide(LlamaModel Model, string? LoraPath = null, float LoraScale = 1.0f)
{
    /// <summary>The name shown in reports: the model's, plus the adapter's file name.</summary>
    public string Name => LoraPath is null ? Model.Name : $"{Model.Name}+{Path.GetFileName(LoraPath)}";
}

/// <summary>
/// Token-level contrastive estimation (cDPO): teacher-force prompt + response through a positive and a negative
/// model that share a vocabulary, and score each response token by
/// <c>s_t = softmax((1 + beta) z_pos[t-1] - beta z_neg[t-1])[y_t]</c>; the logit row at batch index t - 1 scores
/// token t. Works in chunks so that only a chunk of logit rows is held at a time.
/// </summary>
public static class ContrastiveScorer
{
    private const int ChunkTokens = 64;   // logit rows of the positive model held at once

    /// <summary>Throws an <see cref="AgentHostException"/> when the two models' vocabularies differ.</summary>
    public static void EnsureSameVocabulary(LlamaModel positive, LlamaModel negative)
    {
        ArgumentNullException.ThrowIfNull(positive);
        ArgumentNullException.ThrowIfNull(negative);
        var a = positive.Vocabulary;
        var b = negative.Vocabulary;
        if (a.Count != b.Count)
            throw Different(positive, negative, $"{a.Count} tokens against {b.Count}");
        for (var t = 0; t < a.Count; t++)
        {
            if (!a.GetBytes(t).SequenceEqual(b.GetBytes(t)) || a.IsEndOfGeneration(t) != b.IsEndOfGeneration(t))
                throw Different(positive, negative, $"token {t} differs");
        }
        if (a.Bos != b.Bos || a.AddBos != b.AddBos)
            throw Different(positive, negative, "the BOS token differs");
    }

    /// <summary>Scores the response. The two models may be the same instance (then every score is a plain probability at beta = any).</summary>
    public static Task<ContrastiveReport> ScoreAsync(LlamaModel positive, LlamaModel negative, ContrastiveRequest request, IProgress<AnalysisProgress>? progress = null,
        CancellationToken cancellationToken = default)
        => ScoreAsync(new ContrastiveSide(positive), new ContrastiveSide(negative), request, progress, cancellationToken);

    /// <summary>Scores the response with two sides (models, optionally with LoRA adapters).</summary>
    public static async Task<ContrastiveReport> ScoreAsync(ContrastiveSide positiveSide, ContrastiveSide negativeSide, ContrastiveRequest request,
        IProgress<AnalysisProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(positiveSide);
        ArgumentNullException.ThrowIfNull(negativeSide);
        ArgumentNullException.ThrowIfNull(request);
        Guard.Require(double.IsFinite(request.Beta) && request.Beta >= 0, $"beta must be 0 or more, not {request.Beta}.");
        Guard.Require(float.IsFinite(positiveSide.LoraScale) && float.IsFinite(negativeSide.LoraScale), "A LoRA scale must be a finite number.");
        var positive = positiveSide.Model;
        var negative = negativeSide.Model;
        EnsureSameVocabulary(positive, negative);
        var clock = Stopwatch.StartNew();

        int[] promptTokens, response;
        if (request.ResponseTokens is { } given)
        {
            Guard.Require(!string.IsNullOrEmpty(request.Prompt), "The prompt is empty.");
            promptTokens = request.PromptTokens is { } context ? [.. context] : positive.Tokenize(request.Prompt, positive.Vocabulary.AddBos);
            Guard.Require(promptTokens.Length > 0, "The prompt has no tokens.");
            foreach (var token in promptTokens)
                Guard.Require((uint)token < (uint)positive.Vocabulary.Count, $"Prompt token {token} is outside the vocabulary of {positive.Vocabulary.Count} tokens.");
            response = [.. given];
            Guard.Require(response.Length > 0, "The response to score is empty.");
            foreach (var token in response)
                Guard.Require((uint)token < (uint)positive.Vocabulary.Count, $"Response token {token} is outside the vocabulary of {positive.Vocabulary.Count} tokens.");
        }
        else
        {
            (promptTokens, response) = TokenSplit.Split(positive, request.Prompt, request.Response ?? "");
        }
        int[] sequence = [.. promptTokens, .. response];
        foreach (var model in new[] { positive, negative })
        {
            if (sequence.Length > model.ContextSize)
                throw new AgentHostException(ErrorKind.ContextOverflow, $"Prompt and response are {sequence.Length} tokens but model {model.Name} has a context of {model.ContextSize}.");
        }

        using var positiveSession = await CreateSessionAsync(positiveSide, cancellationToken).ConfigureAwait(false);
        using var negativeSession = await CreateSessionAsync(negativeSide, cancellationToken).ConfigureAwait(false);
        var vocabulary = positive.Vocabulary.Count;
        var rows = new float[Math.Min(ChunkTokens, response.Length) * vocabulary];
        var tokens = new ContrastiveToken[response.Length];
        var beta = request.Beta;
        progress?.Report(new AnalysisProgress("scoring", 0, response.Length));

        // Row r of the chunk predicts response token `from + r`; it is the logit row of sequence position P - 1 + from + r.
        var p = promptTokens.Length;
        var decodedPositive = 0;
        var decodedNegative = 0;
        for (var from = 0; from < response.Length; from += ChunkTokens)
        {
            var count = Math.Min(ChunkTokens, response.Length - from);
            var rowsEnd = p - 1 + from + count;   // positions [p - 1 + from, rowsEnd) carry the chunk's rows
            var logProbPositive = new double[count];
            decodedPositive = await positiveSession.RunAsync(s => DecodeRows(s, sequence, decodedPositive, p - 1 + from, rowsEnd,
                (r, logits) =>
                {
                    logits.CopyTo(rows.AsSpan(r * vocabulary, vocabulary));
                    logProbPositive[r] = LogitMath.LogSoftmaxAt(logits, response[from + r]);
                }, cancellationToken), cancellationToken).ConfigureAwait(false);
            decodedNegative = await negativeSession.RunAsync(s => DecodeRows(s, sequence, decodedNegative, p - 1 + from, rowsEnd,
                (r, logits) =>
                {
                    var y = response[from + r];
                    tokens[from + r] = new ContrastiveToken
                    {
                        Token = y,
                        Text = positive.Detokenize([y]),
                        Score = Score(rows.AsSpan(r * vocabulary, vocabulary), logits, beta, y),
                        LogProbPositive = logProbPositive[r],
                        LogProbNegative = LogitMath.LogSoftmaxAt(logits, y),
                    };
                }, cancellationToken), cancellationToken).ConfigureAwait(false);
            progress?.Report(new AnalysisProgress("scoring", from + count, response.Length));
        }

        var lowest = 0;
        var sum = 0.0;
        for (var t = 0; t < tokens.Length; t++)
        {
            sum += tokens[t].Score;
            if (tokens[t].Score < tokens[lowest].Score)
                lowest = t;
        }
        return new ContrastiveReport
        {
            PositiveModel = positiveSide.Name,
            NegativeModel = negativeSide.Name,
            Beta = beta,
            Prompt = request.Prompt,
            PromptTokens = promptTokens,
            ResponseText = positive.Detokenize(response),
            Tokens = tokens,
            LowestIndex = lowest,
            MeanScore = sum / tokens.Length,
            Stats = new AnalysisStats
            {
                Completions = 0,
                TokensSampled = 0,
                DecodeCalls = positiveSession.DecodeCalls + negativeSession.DecodeCalls,
                ElapsedMs = Math.Round(clock.Elapsed.TotalMilliseconds, 3),
            },
        };
    }

    /// <summary>
    /// s = softmax((1 + beta) z_pos - beta z_neg)[y], in double precision. With z_pos == z_neg it is softmax(z)[y]
    /// exactly up to rounding, whatever beta.
    /// </summary>
    public static double Score(ReadOnlySpan<float> positive, ReadOnlySpan<float> negative, double beta, int token)
    {
        if (positive.Length != negative.Length)
            throw new ArgumentException("The logit rows differ in length.", nameof(negative));
        var max = double.NegativeInfinity;
        for (var v = 0; v < positive.Length; v++)
            max = Math.Max(max, (1 + beta) * positive[v] - beta * negative[v]);
        var sum = 0.0;
        for (var v = 0; v < positive.Length; v++)
            sum += Math.Exp((1 + beta) * positive[v] - beta * negative[v] - max);
        return Math.Exp((1 + beta) * positive[token] - beta * negative[token] - max) / sum;
    }

    private static async Task<InferenceSession> CreateSessionAsync(ContrastiveSide side, CancellationToken cancellationToken)
    {
        var adapter = side.LoraPath is { } path ? side.Model.LoadLoraAdapter(path) : null;
        var session = await side.Model.CreateSessionAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (adapter is not null)
                await session.RunAsync(s => { s.SetLoraAdapters([(adapter, side.LoraScale)]); return true; }, cancellationToken).ConfigureAwait(false);
            return session;
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    // Decodes sequence[decoded..rowsEnd) into sequence 0 (continuing where the last call stopped), with logits for
    // positions [rowsStart, rowsEnd); hands each row to `row` in order. Returns the new decoded count.
    private static int DecodeRows(InferenceSession session, int[] sequence, int decoded, int rowsStart, int rowsEnd, Action<int, float[]> row, CancellationToken cancellationToken)
    {
        if (decoded == 0)
            session.Reset();
        var buffer = new float[session.Model.Vocabulary.Count];
        while (decoded < rowsEnd)
        {
            session.ClearBatch();
            var end = Math.Min(rowsEnd, decoded + session.BatchCapacity);
            var first = decoded;
            for (var position = first; position < end; position++)
                session.AddToBatch(sequence[position], position, 0, logits: position >= rowsStart);
            session.Decode(cancellationToken);
            for (var position = Math.Max(first, rowsStart); position < end; position++)
            {
                session.GetLogits(position - first).CopyTo(buffer);
                row(position - rowsStart, buffer);
            }
            decoded = end;
        }
        return decoded;
    }

    private static AgentHostException Different(LlamaModel positive, LlamaModel negative, string detail)
        => new(ErrorKind.InvalidArgument,
            $"Models {positive.Name} and {negative.Name} have different vocabularies ({detail}); contrastive scoring needs two models that share one vocabulary.");
}
