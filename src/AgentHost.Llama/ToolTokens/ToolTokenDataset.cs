using AgentHost.Llama.Decoding;
using AgentHost.Llama.Engine;

namespace AgentHost.Llama.ToolTokens;

/// <summary>
/// What training and evaluation of a tool-token head need from the frozen model, computed in one pass
/// over an annotated corpus: per labelled position the head's input (the final hidden state h, with a
/// context window also the mean of the last hidden states: <see cref="ToolTokenContext"/>), the vocabulary log-sum-exp,
/// the largest vocabulary logit and the label (a vocabulary token, or <c>VocabularySize + tool</c> at a
/// call start). Positions inside a call's result are not labelled (ToolkenGPT ignores them).
/// </summary>
public sealed class ToolTokenDataset
{
    private ToolTokenDataset(int dimension, int contextWindow, int vocabularySize, IReadOnlyList<string> tools, List<float> features, List<float> logSumExp, List<float> maxLogit,
        List<float> labelLogit, List<int> labels, int skippedCalls, List<int> exampleStarts)
    {
        ExampleStarts = [.. exampleStarts];
        Dimension = dimension;
        ContextWindow = contextWindow;
        VocabularySize = vocabularySize;
        Tools = tools;
        Features = [.. features];
        VocabLogSumExp = [.. logSumExp];
        MaxVocabLogit = [.. maxLogit];
        LabelLogit = [.. labelLogit];
        Labels = [.. labels];
        SkippedCalls = skippedCalls;
        foreach (var label in Labels)
        {
            if (label >= vocabularySize)
                CallPositions++;
        }
    }

    /// <summary>Length of the head's input per position: the hidden size d, or 2d with a context window.</summary>
    public int Dimension { get; }

    /// <summary>Tokens averaged into the context part of the features (0: h alone).</summary>
    public int ContextWindow { get; }

    /// <summary>Vocabulary size V (tool i has label V + i).</summary>
    public int VocabularySize { get; }

    /// <summary>The tools, in label order.</summary>
    public IReadOnlyList<string> Tools { get; }

    /// <summary>Number of labelled positions.</summary>
    public int Count => Labels.Length;

    /// <summary>Positions labelled with a tool.</summary>
    public int CallPositions { get; }

    /// <summary>Calls left out because the text before them did not tokenize to a prefix of the line's tokens.</summary>
    public int SkippedCalls { get; }

    /// <summary>The head's inputs, Count x <see cref="Dimension"/>.</summary>
    public float[] Features { get; }

    /// <summary>log sum exp of the vocabulary logits per position.</summary>
    public float[] VocabLogSumExp { get; }

    /// <summary>Largest vocabulary logit per position.</summary>
    public float[] MaxVocabLogit { get; }

    /// <summary>Vocabulary logit of the label (0 for a tool label).</summary>
    public float[] LabelLogit { get; }

    /// <summary>Label per position: a token id below V, or V + tool index.</summary>
    public int[] Labels { get; }

    /// <summary>
    /// Index of each example's first labelled position: example e holds the positions from <c>ExampleStarts[e]</c> up to the
    /// next example's start (or <see cref="Count"/>). ToolkenGPT's trainer takes one step per example (sequence).
    /// </summary>
    public int[] ExampleStarts { get; }

    /// <summary>The head's input at position <paramref name="position"/>.</summary>
    public ReadOnlySpan<float> FeaturesAt(int position) => Features.AsSpan(position * Dimension, Dimension);

    /// <summary>
    /// Runs the model (loaded with <see cref="Models.ModelSettings.HiddenStates"/>) once over
    /// <paramref name="examples"/> on <paramref name="session"/>'s scheduler thread and caches the positions.
    /// The session's KV cache is cleared (it decodes one example at a time into sequence 0). <paramref name="contextWindow"/>
    /// is the number of tokens averaged into the context part of the features (0: h alone, as the papers).
    /// </summary>
    public static Task<ToolTokenDataset> BuildAsync(InferenceSession session, IReadOnlyList<AnnotatedExample> examples, IReadOnlyList<string> tools,
        int contextWindow = 0, IProgress<double>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(examples);
        ArgumentNullException.ThrowIfNull(tools);
        ArgumentOutOfRangeException.ThrowIfNegative(contextWindow);
        RequireHiddenStates(session);
        return session.RunAsync(s => Build(s, examples, tools, contextWindow, progress, cancellationToken), cancellationToken);
    }

    internal static void RequireHiddenStates(InferenceSession session)
    {
        if (!session.HasHiddenStates)
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Tool tokens need hidden states: load model '{session.Model.Name}' with HiddenStates = true (or use a session created with hidden states).");
    }

    private static ToolTokenDataset Build(InferenceSession session, IReadOnlyList<AnnotatedExample> examples, IReadOnlyList<string> tools, int contextWindow,
        IProgress<double>? progress, CancellationToken cancellationToken)
    {
        var model = session.Model;
        var vocabulary = model.Vocabulary.Count;
        List<float> features = [], lse = [], max = [], labelLogit = [];
        List<int> labels = [], starts = [];
        var context = new ToolTokenContext(model.EmbeddingSize, contextWindow);
        var buffer = new float[context.FeatureSize];
        var skipped = 0;

        for (var e = 0; e < examples.Count; e++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var example = examples[e];
            var tokens = model.Tokenize(example.Text, model.Vocabulary.AddBos);
            if (tokens.Length > session.ContextSize)
                throw new AgentHostException(ErrorKind.ContextOverflow, $"Corpus line {example.Line} is {tokens.Length} tokens, more than the context of {session.ContextSize}.");

            // Label per position p (predicting token p + 1): next token, a tool, or ignored (-1).
            var targets = new int[tokens.Length];
            for (var p = 0; p + 1 < tokens.Length; p++)
                targets[p] = tokens[p + 1];
            targets[^1] = -1;
            foreach (var call in example.Calls)
            {
                var tool = IndexOf(tools, call.Tool)
                    ?? throw new AgentHostException(ErrorKind.InvalidArgument, $"Corpus line {example.Line} calls '{call.Tool}', which is not among the tools [{string.Join(", ", tools)}].");
                // Most vocabularies put the space before the result into its first token ("▁7"); some end words with it ("had ").
                var before = model.Tokenize(example.Text[..call.Start].TrimEnd(), model.Vocabulary.AddBos);
                if (!IsPrefix(before, tokens))
                    before = model.Tokenize(example.Text[..call.Start], model.Vocabulary.AddBos);
                var through = model.Tokenize(example.Text[..(call.Start + call.Result.Length)], model.Vocabulary.AddBos);
                if (before.Length == 0 || through.Length <= before.Length || !IsPrefix(before, tokens) || !IsPrefix(through, tokens))
                {
                    skipped++;
                    continue;
                }
                targets[before.Length - 1] = vocabulary + tool;
                for (var p = before.Length; p < through.Length - 1; p++)
                    targets[p] = -1;
            }

            session.Reset();
            context.Reset();
            starts.Add(labels.Count);
            for (var start = 0; start < tokens.Length; start += session.BatchCapacity)
            {
                var length = Math.Min(session.BatchCapacity, tokens.Length - start);
                session.ClearBatch();
                for (var i = 0; i < length; i++)
                    session.AddToBatch(tokens[start + i], start + i, 0, logits: true);
                session.Decode(cancellationToken);
                for (var i = 0; i < length; i++)
                {
                    // Every token's hidden state enters the context (results included); only labelled positions are kept.
                    context.Push(session.GetHiddenState(i));
                    var target = targets[start + i];
                    if (target < 0)
                        continue;
                    context.Write(buffer);
                    var logits = session.GetLogits(i);
                    var (m, s) = LogitMath.LogSumExp(logits);
                    features.AddRange(buffer);
                    lse.Add((float)s);
                    max.Add(m);
                    labelLogit.Add(target < vocabulary ? logits[target] : 0);
                    labels.Add(target);
                }
            }
            progress?.Report((e + 1) / (double)examples.Count);
        }
        session.Reset();
        return new ToolTokenDataset(context.FeatureSize, contextWindow, vocabulary, tools, features, lse, max, labelLogit, labels, skipped, starts);
    }

    private static int? IndexOf(IReadOnlyList<string> tools, string name)
    {
        for (var i = 0; i < tools.Count; i++)
        {
            if (tools[i] == name)
                return i;
        }
        return null;
    }

    private static bool IsPrefix(int[] prefix, int[] tokens) => prefix.Length <= tokens.Length && prefix.AsSpan().SequenceEqual(tokens.AsSpan(0, prefix.Length));
}
