using System.Text.Json.Serialization;

namespace AgentHost.Llama.Analysis;

/// <summary>
/// One cDPO training example: a preference pair scored by contrastive estimation, in the two shapes a trainer reads.
/// The paper's trainer (Critical-Tokens-Matter, <c>train_cdpo.py</c>) reads <see cref="PositiveProbs"/> and
/// <see cref="NegativeProbs"/> (<c>prob_result.{pos,neg}</c>: s over every token after the first of prompt + response)
/// and weights the rejected log-ratios by <c>1 - s</c> itself; with its released config (<c>only_neg=True</c>) the
/// chosen ones are unweighted. The TRL-style fields carry the weights per response token, ready to use:
/// <see cref="ChosenWeights"/> (1 under <see cref="OnlyNeg"/>, else s_t) and <see cref="RejectedWeights"/> (1 - s_t).
/// Token ids and weights are aligned (one weight per id, this model's tokenizer).
/// </summary>
public sealed record CdpoRecord
{
    /// <summary>The prompt.</summary>
    public required string Prompt { get; init; }

    /// <summary>The chosen (correct) response as given.</summary>
    public required string Chosen { get; init; }

    /// <summary>The rejected (incorrect) response as given.</summary>
    public required string Rejected { get; init; }

    /// <summary>The chosen response's token ids (tokenized after the prompt).</summary>
    public required int[] ChosenTokenIds { get; init; }

    /// <summary>Each chosen token's text.</summary>
    public required string[] ChosenTokens { get; init; }

    /// <summary>Weight per chosen token: 1 under <see cref="OnlyNeg"/> (the paper's config), else its s_t.</summary>
    public required double[] ChosenWeights { get; init; }

    /// <summary>s_t per chosen token: high where the positive model prefers the token.</summary>
    public required double[] ChosenScores { get; init; }

    /// <summary>The rejected response's token ids (tokenized after the prompt).</summary>
    public required int[] RejectedTokenIds { get; init; }

    /// <summary>Each rejected token's text.</summary>
    public required string[] RejectedTokens { get; init; }

    /// <summary>1 - s_t per rejected token: high at the tokens the negative model prefers (the critical ones).</summary>
    public required double[] RejectedWeights { get; init; }

    /// <summary>s_t per rejected token.</summary>
    public required double[] RejectedScores { get; init; }

    /// <summary>Whether the chosen tokens are unweighted (the paper's released <c>only_neg=True</c>).</summary>
    public required bool OnlyNeg { get; init; }

    /// <summary>beta of the contrastive scores.</summary>
    public required double Beta { get; init; }

    /// <summary>The positive side's name.</summary>
    public required string PositiveModel { get; init; }

    /// <summary>The negative side's name.</summary>
    public required string NegativeModel { get; init; }

    /// <summary>The paper trainer's <c>prob_result["pos"]</c>: scores over prompt + chosen (not in the TRL lines).</summary>
    [JsonIgnore]
    public CdpoProbResult PositiveProbs { get; init; } = CdpoProbResult.Empty;

    /// <summary>The paper trainer's <c>prob_result["neg"]</c>: scores over prompt + rejected (not in the TRL lines).</summary>
    [JsonIgnore]
    public CdpoProbResult NegativeProbs { get; init; } = CdpoProbResult.Empty;

    /// <summary>
    /// Scores both responses of <paramref name="pair"/> with the two sides: every token after the first of
    /// prompt + response, once (the paper's shape), from which the response tokens' weights are taken.
    /// </summary>
    public static async Task<CdpoRecord> ScoreAsync(ContrastiveSide positive, ContrastiveSide negative, CdpoPair pair, double beta = 1.0, bool onlyNeg = true,
        IProgress<AnalysisProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(positive);
        ArgumentNullException.ThrowIfNull(pair);
        var (chosenIds, chosenTexts, chosenScores, chosenProbs, report) = await ScoreSideAsync(positive, negative, pair.Prompt, pair.Chosen, beta, progress, cancellationToken)
            .ConfigureAwait(false);
        var (rejectedIds, rejectedTexts, rejectedScores, rejectedProbs, _) = await ScoreSideAsync(positive, negative, pair.Prompt, pair.Rejected, beta, progress, cancellationToken)
            .ConfigureAwait(false);
        return new CdpoRecord
        {
            Prompt = pair.Prompt,
            Chosen = pair.Chosen,
            Rejected = pair.Rejected,
            ChosenTokenIds = chosenIds,
            ChosenTokens = chosenTexts,
            ChosenWeights = onlyNeg ? [.. chosenScores.Select(_ => 1.0)] : chosenScores,
            ChosenScores = chosenScores,
            RejectedTokenIds = rejectedIds,
            RejectedTokens = rejectedTexts,
            RejectedWeights = [.. rejectedScores.Select(s => 1 - s)],
            RejectedScores = rejectedScores,
            OnlyNeg = onlyNeg,
            Beta = report.Beta,
            PositiveModel = report.PositiveModel,
            NegativeModel = report.NegativeModel,
            PositiveProbs = chosenProbs,
            NegativeProbs = rejectedProbs,
        };
    }

    // prompt + response tokenized together (as the trainer's tokenizer(question + response)); s for tokens 1..N-1
    // (the trainer's input_ids[1:]); the response's own tokens are those after the prompt's (TokenSplit).
    private static async Task<(int[] Ids, string[] Texts, double[] Scores, CdpoProbResult Probs, ContrastiveReport Report)> ScoreSideAsync(ContrastiveSide positive,
        ContrastiveSide negative, string prompt, string response, double beta, IProgress<AnalysisProgress>? progress, CancellationToken cancellationToken)
    {
        var model = positive.Model;
        var (promptTokens, responseTokens) = TokenSplit.Split(model, prompt, response);
        int[] full = [.. promptTokens, .. responseTokens];
        var report = await ContrastiveScorer.ScoreAsync(positive, negative,
            new ContrastiveRequest { Prompt = prompt, PromptTokens = full[..1], ResponseTokens = full[1..], Beta = beta }, progress, cancellationToken).ConfigureAwait(false);
        var ceProb = report.Tokens.Select(t => t.Score).ToArray();
        var start = ResponseStartIndex(model, full, prompt);
        var probs = new CdpoProbResult { CeProb = ceProb, ResponseStartIdx = start, Text = model.Detokenize(full.AsSpan(start + 1)) };
        var first = promptTokens.Length - 1;   // ce_prob[k] scores full[k + 1]
        return (responseTokens, [.. report.Tokens.Skip(first).Select(t => t.Text)], ceProb[first..], probs, report);
    }

    // The paper's rule (pipeline.py calculate_ce_score): the first index whose prefix, detokenized, contains the prompt.
    private static int ResponseStartIndex(Models.LlamaModel model, int[] full, string prompt)
    {
        for (var i = 0; i < full.Length; i++)
        {
            if (model.Detokenize(full.AsSpan(0, i + 1)).Contains(prompt, StringComparison.Ordinal))
                return i;
        }
        return full.Length - 1;
    }
}

/// <summary>One side of the paper trainer's <c>prob_result</c>: contrastive scores over prompt + response.</summary>
public sealed record CdpoProbResult
{
    /// <summary>No scores (a record built without them; <see cref="CdpoRecord.ScoreAsync"/> always fills both sides).</summary>
    public static CdpoProbResult Empty { get; } = new() { CeProb = [], ResponseStartIdx = 0, Text = "" };

    /// <summary><c>ce_prob</c>: s of every token after the first of prompt + response (the trainer's <c>input_ids[1:]</c>).</summary>
    public required double[] CeProb { get; init; }

    /// <summary><c>response_start_idx</c>: the index of the prompt's last token (the paper's rule).</summary>
    public required int ResponseStartIdx { get; init; }

    /// <summary><c>text</c>: the response as detokenized from the tokens after <see cref="ResponseStartIdx"/>.</summary>
    public required string Text { get; init; }
}
