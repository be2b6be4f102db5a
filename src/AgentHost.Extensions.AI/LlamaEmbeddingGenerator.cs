using System.Diagnostics.Metrics;
using AgentHost.Llama.Engine;
using AgentHost.Llama.Models;
using Microsoft.Extensions.AI;

namespace AgentHost.Extensions.AI;

/// <summary>
/// <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/> on a local model: each text becomes the mean of its
/// final hidden states, L2-normalised (see <see cref="TextEmbedder"/>). Usage counts the input tokens.
/// </summary>
/// <param name="model">The model (not owned).</param>
/// <param name="meterFactory">Creates the <see cref="AgentHostTelemetry.MeterName"/> meter; null for a process-wide one.</param>
public sealed class LlamaEmbeddingGenerator(LlamaModel model, IMeterFactory? meterFactory = null) : IEmbeddingGenerator<string, Embedding<float>>
{
    private readonly GenerationTelemetry _telemetry = new(meterFactory);
    private readonly TextEmbedder _embedder = new(model);
    private readonly EmbeddingGeneratorMetadata _metadata = new(LlamaChatClient.ProviderName, null, model.Name, model.EmbeddingSize);

    /// <inheritdoc />
    public async Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(values);
        using var telemetry = _telemetry.Start(GenerationTelemetry.Embeddings, model.Name);
        var embeddings = new GeneratedEmbeddings<Embedding<float>>();
        long tokens = 0;
        foreach (var value in values)
        {
            var (vector, count) = await _embedder.EmbedAsync(value, cancellationToken).ConfigureAwait(false);
            tokens += count;
            embeddings.Add(new Embedding<float>(vector) { ModelId = model.Name, CreatedAt = DateTimeOffset.UtcNow });
        }
        embeddings.Usage = new UsageDetails { InputTokenCount = tokens, TotalTokenCount = tokens };
        telemetry.Finish(tokens);
        return embeddings;
    }

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null)
            return null;
        if (serviceType == typeof(EmbeddingGeneratorMetadata))
            return _metadata;
        if (serviceType == typeof(LlamaModel))
            return model;
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    /// <summary>Frees the embedding session (not the model).</summary>
    public void Dispose() => _embedder.Dispose();
}
