namespace AgentHost.Llama.Analysis;

/// <summary>
/// One cDPO training example: a preference pair with a weight per response token, as the paper's trainer
/// (Critical-Tokens-Matter, <c>train_cdpo.py</c>) weights the DPO log-ratios: <c>s_t</c> on the chosen response and
/// <c>1 - s_t</c> on the rejected one, where <c>s_t</c> is the contrastive score of the token in its own response.
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

    /// <summary>s_t per chosen token: high where the positive model prefers the token.</summary>
    public required double[] ChosenWeights { get; init; }

    /// <summary>The rejected response's token ids (tokenized after the prompt).</summary>
    public required int[] RejectedTokenIds { get; init; }

    /// <summary>Each rejected token's text.</summary>
    public required string[] RejectedTokens { get; init; }

    /// <summary>1 - s_t per rejected token: high at the tokens the negative model prefers (the critical ones).</summary>
    public required double[] RejectedWeights { get; init; }

    /// <summary>beta of the contrastive scores.</summary>
    public required double Beta { get; init; }

    /// <summary>The positive side's name.</summary>
    public required string PositiveModel { get; init; }

    /// <summary>The negative side's name.</summary>
    public required string NegativeModel { get; init; }

    /// <summary>Builds the record from the contrastive reports of the chosen and the rejected response (same sides and beta).</summary>
    public static CdpoRecord From(CdpoPair pair, ContrastiveReport chosen, ContrastiveReport rejected)
    {
        ArgumentNullException.ThrowIfNull(pair);
        ArgumentNullException.ThrowIfNull(chosen);
        ArgumentNullException.ThrowIfNull(rejected);
        return new CdpoRecord
        {
            Prompt = pair.Prompt,
            Chosen = pair.Chosen,
            Rejected = pair.Rejected,
            ChosenTokenIds = [.. chosen.Tokens.Select(t => t.Token)],
            ChosenTokens = [.. chosen.Tokens.Select(t => t.Text)],
            ChosenWeights = [.. chosen.Tokens.Select(t => t.Score)],
            RejectedTokenIds = [.. rejected.Tokens.Select(t => t.Token)],
            RejectedTokens = [.. rejected.Tokens.Select(t => t.Text)],
            RejectedWeights = [.. rejected.Tokens.Select(t => 1 - t.Score)],
            Beta = chosen.Beta,
            PositiveModel = chosen.PositiveModel,
            NegativeModel = chosen.NegativeModel,
        };
    }

    /// <summary>Scores both responses of <paramref name="pair"/> with the two sides and builds the record.</summary>
    public static async Task<CdpoRecord> ScoreAsync(ContrastiveSide positive, ContrastiveSide negative, CdpoPair pair, double beta = 1.0,
        IProgress<AnalysisProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(pair);
        var chosen = await ContrastiveScorer.ScoreAsync(positive, negative, new ContrastiveRequest { Prompt = pair.Prompt, Response = pair.Chosen, Beta = beta }, progress, cancellationToken)
            .ConfigureAwait(false);
        var rejected = await ContrastiveScorer.ScoreAsync(positive, negative, new ContrastiveRequest { Prompt = pair.Prompt, Response = pair.Rejected, Beta = beta }, progress, cancellationToken)
            .ConfigureAwait(false);
        return From(pair, chosen, rejected);
    }
}
