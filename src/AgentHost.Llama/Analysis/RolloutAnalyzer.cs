using System.Diagnostics;
using AgentHost.Llama.Decoding;
using AgentHost.Llama.Decoding.Strategies;
using AgentHost.Llama.Engine;

namespace AgentHost.Llama.Analysis;

/// <summary>
/// The rollout finder of "Critical Tokens Matter" (see docs/decoding/critical-tokens.md): n rollouts from every
/// (k-th) prefix of a wrong trajectory, c_i counted by a verifier, the critical token by
/// <see cref="CriticalTokenRule"/>, then n alternatives at the critical position with the original token
/// excluded, each completed once, scored as pass@k. Cost: about n x T / k completions.
/// </summary>
public static class RolloutAnalyzer
{
    /// <summary>Runs the analysis on <paramref name="session"/> (its KV cache is reset); verifiers run on the caller's side.</summary>
    public static async Task<RolloutReport> AnalyzeAsync(InferenceSession session, RolloutRequest request, IProgress<AnalysisProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(request.Verifier);
        var options = request.Options;
        options.Validate();
        Guard.Require(!string.IsNullOrEmpty(request.Prompt), "The prompt is empty.");
        var clock = Stopwatch.StartNew();
        var model = session.Model;
        var decodeCallsAtStart = session.DecodeCalls;
        var seed = options.Seed ?? (ulong)Random.Shared.NextInt64();
        var verifier = request.Verifier;

        // The trajectory: given (tokens or text), or the first of several sampled ones that the verifier rejects.
        int[] promptTokens, trajectory;
        var generated = false;
        if (request.TrajectoryTokens is { } given)
        {
            promptTokens = request.PromptTokens is { } ownPrompt ? [.. ownPrompt] : model.Tokenize(request.Prompt, model.Vocabulary.AddBos);
            Guard.Require(promptTokens.Length > 0, "The prompt has no tokens.");
            foreach (var token in promptTokens)
                Guard.Require((uint)token < (uint)model.Vocabulary.Count, $"Prompt token {token} is outside the vocabulary of {model.Vocabulary.Count} tokens.");
            trajectory = [.. given];
            foreach (var token in trajectory)
                Guard.Require((uint)token < (uint)model.Vocabulary.Count, $"Trajectory token {token} is outside the vocabulary of {model.Vocabulary.Count} tokens.");
        }
        else if (request.Trajectory is { } text)
        {
            (promptTokens, trajectory) = TokenSplit.Split(model, request.Prompt, text);
        }
        else
        {
            (promptTokens, trajectory) = await GenerateWrongTrajectoryAsync(session, request, seed, progress, cancellationToken).ConfigureAwait(false);
            generated = true;
        }
        Guard.Require(trajectory.Length > 0, "The trajectory is empty.");
        Guard.Require(trajectory.Length > options.Stride,
            $"The trajectory has {trajectory.Length} token(s); prefixes of 1 to T - 1 tokens are analysed, so it needs more than the prefix stride {options.Stride}.");
        // An agent's run holds its turns' ends; any other trajectory ends before its end-of-generation token.
        foreach (var token in request.Continuation is null ? trajectory : [])
            Guard.Require(!model.Vocabulary.IsEndOfGeneration(token), "The trajectory holds an end-of-generation token; give only the text before it.");

        var trajectoryText = model.Detokenize(trajectory);
        var trajectoryPasses = await verifier.VerifyAsync(request.Prompt, trajectoryText, cancellationToken).ConfigureAwait(false);

        int[] context = [.. promptTokens, .. trajectory];
        var sampling = new SamplingOptions { Temperature = options.Temperature, TopK = 0, TopP = options.TopP, MinP = 0, Seed = seed };
        Guard.Require(request.TokenSpans is null || request.TokenSpans.Count == trajectory.Length,
            $"{request.TokenSpans?.Count} token labels for a trajectory of {trajectory.Length} tokens.");
        using var runner = await session.RunAsync(s => new RolloutRunner(s, context, sampling, options.MaxTokens, options.StopStrings, cancellationToken,
            request.Continuation?.StopTokens) { PromptLength = promptTokens.Length }, cancellationToken).ConfigureAwait(false);

        // c_i for prefixes of k, 2k, ... tokens (or every k-th given length), below T as in the paper's code: the whole
        // wrong trajectory has c_T = 0 by construction and would override the rule's fallback.
        var lengths = new List<int>();
        if (request.PrefixLengths is { } chosen)
        {
            for (var j = 0; j < chosen.Count; j++)
            {
                Guard.Require(chosen[j] >= 1 && chosen[j] < trajectory.Length && (j == 0 || chosen[j] > chosen[j - 1]),
                    $"Prefix lengths must ascend within 1 to {trajectory.Length - 1}; {chosen[j]} does not.");
                if ((j + 1) % options.Stride == 0)
                    lengths.Add(chosen[j]);
            }
            Guard.Require(lengths.Count > 0, "No prefix is left to analyse; give more prefix lengths or a smaller stride.");
        }
        else
        {
            for (var i = options.Stride; i < trajectory.Length; i += options.Stride)
                lengths.Add(i);
        }
        var n = options.Rollouts;
        Guard.Require((long)lengths.Count * n <= RolloutOptions.MaxCompletions,
            $"{lengths.Count} prefixes x {n} rollouts is more than the limit of {RolloutOptions.MaxCompletions} completions; analyse every k-th prefix (stride) or run fewer rollouts.");
        var jobs = new List<RolloutJob>(lengths.Count * n);
        foreach (var i in lengths)
            jobs.AddRange(Enumerable.Repeat(new RolloutJob(promptTokens.Length + i, -1), n));
        var prefixTexts = lengths.Select(i => model.Detokenize(trajectory.AsSpan(0, i))).ToArray();
        var completions = await RunJobsAsync(session, runner, jobs, job => prefixTexts[job / n], request, "rollouts", progress, cancellationToken)
            .ConfigureAwait(false);

        var prefixes = new List<PrefixRollouts>(lengths.Count);
        var correct = new int[lengths.Count];
        for (var p = 0; p < lengths.Count; p++)
        {
            var rollouts = completions.GetRange(p * n, n);
            correct[p] = rollouts.Count(r => r.Passed);
            prefixes.Add(new PrefixRollouts { Length = lengths[p], PrefixText = prefixTexts[p], Correct = correct[p], Rollouts = rollouts });
        }

        var threshold = options.RecoverThreshold ?? CriticalTokenRule.DefaultRecoverThreshold(n);
        var criticalIndex = CriticalTokenRule.Find(correct, threshold);
        CriticalToken? critical = null;
        CriticalAlternatives? alternatives = null;
        if (criticalIndex >= 0)
        {
            var i = lengths[criticalIndex];
            var original = trajectory[i - 1];
            critical = new CriticalToken { Length = i, PrefixIndex = criticalIndex, Token = original, Text = model.Detokenize([original]), Span = request.TokenSpans?[i - 1] };

            // p(. | prompt, y_<i) with p[y_i] = 0: the context up to y_{i-1}, the original excluded from the first draw.
            var before = model.Detokenize(trajectory.AsSpan(0, i - 1));
            var altJobs = Enumerable.Repeat(new RolloutJob(promptTokens.Length + i - 1, original), n).ToList();
            var samples = await RunJobsAsync(session, runner, altJobs, _ => before, request, "alternatives", progress, cancellationToken).ConfigureAwait(false);
            var passed = samples.Count(s => s.Passed);
            alternatives = new CriticalAlternatives
            {
                Length = i,
                Excluded = original,
                PrefixText = before,
                Completions = samples,
                Correct = passed,
                PassAtK = PassAtK.All(n, passed),
            };
        }

        await session.RunAsync(s => { s.Reset(); return true; }, cancellationToken).ConfigureAwait(false);
        return new RolloutReport
        {
            Model = model.Name,
            Prompt = request.Prompt,
            PromptTokens = promptTokens,
            TrajectoryTokens = trajectory,
            TokenTexts = [.. trajectory.Select(t => model.Detokenize([t]))],
            TrajectoryText = trajectoryText,
            TokenSpans = request.TokenSpans,
            Continuation = request.Continuation?.Description,
            TrajectoryGenerated = generated,
            TrajectoryPasses = trajectoryPasses,
            Verifier = verifier.Description,
            Settings = new RolloutSettings
            {
                Rollouts = n,
                Stride = options.Stride,
                Temperature = options.Temperature,
                TopP = options.TopP,
                MaxTokens = options.MaxTokens,
                Seed = runner.Seed,
                RecoverThreshold = threshold,
                StopStrings = options.StopStrings,
                Judge = request.Continuation is null ? options.Judge : JudgeScope.Full,
                ParallelSequences = runner.Capacity,
            },
            Prefixes = prefixes,
            Critical = critical,
            Alternatives = alternatives,
            Stats = new AnalysisStats
            {
                Completions = completions.Count + (alternatives?.Completions.Count ?? 0),
                TokensSampled = runner.TokensSampled,
                DecodeCalls = session.DecodeCalls - decodeCallsAtStart,
                ElapsedMs = Math.Round(clock.Elapsed.TotalMilliseconds, 3),
            },
        };
    }

    // Runs jobs in rounds of the runner's capacity on the scheduler thread, verifying each round's completions here;
    // the verifier sees the completion (cut at the stop strings), or with JudgeScope.Full prefixText(job index) before it.
    private static async Task<List<RolloutCompletion>> RunJobsAsync(InferenceSession session, RolloutRunner runner, List<RolloutJob> jobs, Func<int, string> prefixText,
        RolloutRequest request, string phase, IProgress<AnalysisProgress>? progress, CancellationToken cancellationToken)
    {
        var results = new List<RolloutCompletion>(jobs.Count);
        progress?.Report(new AnalysisProgress(phase, 0, jobs.Count));
        for (var start = 0; start < jobs.Count; start += runner.Capacity)
        {
            var round = jobs.GetRange(start, Math.Min(runner.Capacity, jobs.Count - start)).ToArray();
            var sampled = await session.RunAsync(_ => runner.RunRound(round, cancellationToken), cancellationToken).ConfigureAwait(false);
            for (var j = 0; j < round.Length; j++)
            {
                var (tokens, text, stop) = sampled[j];
                IReadOnlyList<RolloutToolCall>? calls = null;
                if (request.Continuation is { } continuation)
                {
                    // An agent run: the rest of the run from the agent, the outcome judged on the prefix and all of it.
                    var run = await continuation.ContinueAsync(round[j].ContextLength - runner.PromptLength, text, runner.Generate, cancellationToken).ConfigureAwait(false);
                    (text, calls) = (run.Text, run.ToolCalls);
                }
                var judged = request.Continuation is not null || request.Options.Judge == JudgeScope.Full ? prefixText(start + j) + text : text;
                var passed = await request.Verifier.VerifyAsync(request.Prompt, judged, cancellationToken).ConfigureAwait(false);
                results.Add(new RolloutCompletion { Tokens = tokens, Text = text, Passed = passed, Stop = stop, ToolCalls = calls });
            }
            progress?.Report(new AnalysisProgress(phase, results.Count, jobs.Count));
        }
        return results;
    }

    private static async Task<(int[] Prompt, int[] Trajectory)> GenerateWrongTrajectoryAsync(InferenceSession session, RolloutRequest request, ulong seed,
        IProgress<AnalysisProgress>? progress, CancellationToken cancellationToken)
    {
        var options = request.Options;
        var strategy = new SamplingStrategy();
        progress?.Report(new AnalysisProgress("trajectory", 0, options.TrajectoryAttempts));
        for (var attempt = 0; attempt < options.TrajectoryAttempts; attempt++)
        {
            var generation = new GenerationRequest
            {
                Prompt = request.Prompt,
                MaxTokens = options.TrajectoryMaxTokens,
                Sampling = new SamplingOptions { Temperature = options.Temperature, TopK = 0, TopP = options.TopP, MinP = 0, Seed = seed + 1 + (ulong)attempt },
            };
            var result = await session.GenerateAsync(strategy, generation, cancellationToken: cancellationToken).ConfigureAwait(false);
            progress?.Report(new AnalysisProgress("trajectory", attempt + 1, options.TrajectoryAttempts));
            if (result.Tokens.Count > 0 && !await request.Verifier.VerifyAsync(request.Prompt, result.Text, cancellationToken).ConfigureAwait(false))
                return (session.Model.Tokenize(request.Prompt, session.Model.Vocabulary.AddBos), [.. result.Tokens]);
        }
        throw new AgentHostException(ErrorKind.InvalidArgument,
            $"All {options.TrajectoryAttempts} trajectories the model wrote pass the verifier ({request.Verifier.Description}); give a wrong trajectory or more attempts.");
    }
}
