using AgentHost.Extensions.AI;
using Microsoft.Extensions.AI;

namespace AgentHost.SemanticKernel.Tests;

/// <summary>Embeddings from stories260K's final hidden states through MEAI's IEmbeddingGenerator.</summary>
[Collection(ChatModelCollection.Name)]
public sealed class EmbeddingTests(ChatModelFixture fixture)
{
    private static double Cosine(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double dot = 0;
        for (var i = 0; i < a.Length; i++)
            dot += a[i] * b[i];
        return dot;   // both are unit vectors
    }

    [Fact]
    public async Task Embeddings_are_unit_vectors_of_the_hidden_size_deterministic_and_tell_texts_apart()
    {
        using var generator = new LlamaEmbeddingGenerator(fixture.Model);

        var embeddings = await generator.GenerateAsync(["The cat sat on the mat.", "The cat sat on the mat.", "Tim ran to the big red car."]);

        Assert.Equal(3, embeddings.Count);
        var metadata = generator.GetService<EmbeddingGeneratorMetadata>()!;
        Assert.Equal(fixture.Model.Weights.EmbeddingSize, metadata.DefaultModelDimensions);
        Assert.All(embeddings, e => Assert.Equal(metadata.DefaultModelDimensions, e.Vector.Length));
        Assert.All(embeddings, e => Assert.Equal(1.0, Cosine(e.Vector.Span, e.Vector.Span), 4));
        Assert.Equal(embeddings[0].Vector.ToArray(), embeddings[1].Vector.ToArray());
        Assert.True(Cosine(embeddings[0].Vector.Span, embeddings[2].Vector.Span) < 0.999);
        Assert.True(embeddings.Usage!.InputTokenCount > 0);
    }

    [Fact]
    public async Task An_embedding_does_not_disturb_chat_generation_on_the_same_model()
    {
        using var client = new LlamaChatClient(fixture.Model, new LlamaChatClientOptions { PromptCache = false });
        using var generator = new LlamaEmbeddingGenerator(fixture.Model);
        ChatMessage[] story = [new(ChatRole.User, "Tell me a story.")];

        var before = await client.GetResponseAsync(story, new ChatOptions { MaxOutputTokens = 20 });
        await generator.GenerateAsync(["Lily had a red ball."]);
        var after = await client.GetResponseAsync(story, new ChatOptions { MaxOutputTokens = 20 });

        Assert.Equal(before.Text, after.Text);
    }
}
