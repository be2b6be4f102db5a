using AgentHost.Llama.Decoding;
using AgentHost.Llama.Decoding.Strategies;
using AgentHost.Llama.Engine;

namespace AgentHost.Llama.ToolTokens;

/// <summary>
/// Text where no tool belongs, written by the model itself: stories sampled from its start token. ToolkenGPT's
/// training corpora are mostly such text; a demo corpus with a call in most lines is not, and a head trained on
/// it alone fires in ordinary stories. Adding a few of the model's own stories teaches it where not to fire.
/// </summary>
public static class ToolTokenNegatives
{
    /// <summary>Stories <c>toolkens train</c> adds unless told otherwise.</summary>
    public const int DefaultStories = 10;

    /// <summary>Tokens per story.</summary>
    public const int StoryTokens = 120;

    /// <summary>Samples <paramref name="stories"/> stories (seeds <paramref name="seed"/>, +1, ...) as call-free corpus examples; deterministic.</summary>
    public static async Task<IReadOnlyList<AnnotatedExample>> SampleAsync(InferenceSession session, int stories, int seed, IProgress<double>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentOutOfRangeException.ThrowIfNegative(stories);
        var vocabulary = session.Model.Vocabulary;
        // The start token where there is one, else a line break: the model writes from the beginning of a text.
        IReadOnlyList<int> start = vocabulary.Bos >= 0 ? [vocabulary.Bos] : session.Model.Tokenize("\n", addBos: false);
        var examples = new List<AnnotatedExample>(stories);
        for (var i = 0; i < stories; i++)
        {
            var request = new GenerationRequest
            {
                Prompt = "",
                PromptTokens = start,
                MaxTokens = Math.Min(StoryTokens, session.ContextSize - start.Count - 1),
                Sampling = new SamplingOptions { Seed = (ulong)(seed + i) },
            };
            var story = await session.GenerateAsync(new SamplingStrategy(), request, cancellationToken);
            if (!string.IsNullOrWhiteSpace(story.Text))
                examples.Add(new AnnotatedExample(0, story.Text, []));
            progress?.Report((i + 1) / (double)stories);
        }
        return examples;
    }
}
