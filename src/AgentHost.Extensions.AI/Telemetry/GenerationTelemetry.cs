using System.Diagnostics;
using System.Diagnostics.Metrics;
using AgentHost.Llama.Decoding;
using Microsoft.Extensions.AI;

namespace AgentHost.Extensions.AI;

/// <summary>
/// The instruments of <see cref="AgentHostTelemetry.MeterName"/> and one <see cref="Scope"/> per request: a span with
/// the GenAI attributes and, when the request finishes, its tokens, timings and strategy statistics.
/// </summary>
internal sealed class GenerationTelemetry
{
    /// <summary>GenAI operation names (OpenTelemetry semantic conventions).</summary>
    public const string Chat = "chat";

    /// <inheritdoc cref="Chat"/>
    public const string TextCompletion = "text_completion";

    /// <inheritdoc cref="Chat"/>
    public const string Embeddings = "embeddings";

    // Without a container's factory every client shares one process-wide meter, which OpenTelemetry finds by name.
    private static readonly Meter _shared = new(AgentHostTelemetry.MeterName);

    // Histogram buckets as advice to exporters (the defaults suit milliseconds): the GenAI conventions' for durations.
    private static readonly double[] _secondBuckets = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];
    private static readonly double[] _tokenSecondBuckets = [0.001, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5];
    private static readonly double[] _rateBuckets = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000];
    private static readonly double[] _matBuckets = [1, 1.25, 1.5, 1.75, 2, 2.5, 3, 3.5, 4, 5, 6, 8];

    private readonly Counter<long> _generations;
    private readonly Counter<long> _promptTokens;
    private readonly Counter<long> _cachedPromptTokens;
    private readonly Counter<long> _completionTokens;
    private readonly Counter<double> _generationSeconds;
    private readonly Counter<long> _speculativeForwards;
    private readonly Counter<long> _speculativeTokens;
    private readonly UpDownCounter<long> _active;
    private readonly Histogram<double> _tokensPerSecond;
    private readonly Histogram<double> _speculativeMat;
    private readonly Histogram<double> _timeToFirstToken;
    private readonly Histogram<double> _timePerOutputToken;
    private readonly Histogram<double> _requestDuration;

    /// <param name="meterFactory">The container's factory (its listeners see only its meters); null for the shared meter.</param>
    public GenerationTelemetry(IMeterFactory? meterFactory)
    {
        var meter = meterFactory?.Create(AgentHostTelemetry.MeterName) ?? _shared;
        _generations = meter.CreateCounter<long>(AgentHostTelemetry.Generations, "{generation}", "Generations and embedding batches finished.");
        _promptTokens = meter.CreateCounter<long>(AgentHostTelemetry.PromptTokens, "{token}", "Prompt tokens of finished generations.");
        _cachedPromptTokens = meter.CreateCounter<long>(AgentHostTelemetry.CachedPromptTokens, "{token}", "Prompt tokens taken from the prompt cache instead of being decoded.");
        _completionTokens = meter.CreateCounter<long>(AgentHostTelemetry.CompletionTokens, "{token}", "Generated tokens.");
        _generationSeconds = meter.CreateCounter<double>(AgentHostTelemetry.GenerationSeconds, "s", "Wall time spent generating (prefill included).");
        _speculativeForwards = meter.CreateCounter<long>(AgentHostTelemetry.SpeculativeForwards, "{forward}", "Verification forwards of speculative strategies (recycling, lookup).");
        _speculativeTokens = meter.CreateCounter<long>(AgentHostTelemetry.SpeculativeTokens, "{token}", "Tokens emitted by those forwards.");
        _active = meter.CreateUpDownCounter<long>(AgentHostTelemetry.ActiveGenerations, "{generation}", "Generations started and not finished (waiting for or holding a slot).");
        _tokensPerSecond = meter.CreateHistogram(AgentHostTelemetry.TokensPerSecond, "{token}/s", "Generated tokens per second of one generation.", advice: Buckets(_rateBuckets));
        _speculativeMat = meter.CreateHistogram(AgentHostTelemetry.SpeculativeMat, "{token}", "Mean tokens accepted per verification forward of one speculative generation.", advice: Buckets(_matBuckets));
        _timeToFirstToken = meter.CreateHistogram(AgentHostTelemetry.TimeToFirstToken, "s", "From the request until its first token was decoded.", advice: Buckets(_secondBuckets));
        _timePerOutputToken = meter.CreateHistogram(AgentHostTelemetry.TimePerOutputToken, "s", "Time per generated token after the first, of one generation.", advice: Buckets(_tokenSecondBuckets));
        _requestDuration = meter.CreateHistogram(AgentHostTelemetry.RequestDuration, "s", "From the request until its last token.", advice: Buckets(_secondBuckets));
    }

    private static InstrumentAdvice<double> Buckets(double[] boundaries) => new() { HistogramBucketBoundaries = boundaries };

    /// <summary>Starts the span of one request for <paramref name="model"/>; dispose it when the request ends.</summary>
    public Scope Start(string operation, string model, ChatOptions? options = null) => new(this, operation, model, options);

    /// <summary>One request: its span, its place among the active generations, and what it recorded.</summary>
    internal sealed class Scope : IDisposable
    {
        private readonly GenerationTelemetry _owner;
        private readonly string _operation;
        private readonly KeyValuePair<string, object?> _model;
        private readonly Activity? _activity;
        private readonly long _started = Stopwatch.GetTimestamp();
        private bool _finished;

        public Scope(GenerationTelemetry owner, string operation, string model, ChatOptions? options)
        {
            _owner = owner;
            _operation = operation;
            _model = new("model", model);
            _owner._active.Add(1, _model);
            _activity = AgentHostTelemetry.ActivitySource.StartActivity($"{operation} {model}", ActivityKind.Internal);
            if (_activity is not { IsAllDataRequested: true })
                return;
            _activity.SetTag("gen_ai.operation.name", operation)
                .SetTag("gen_ai.provider.name", LlamaChatClient.ProviderName)
                .SetTag("gen_ai.request.model", model)
                .SetTag("gen_ai.request.max_tokens", options?.MaxOutputTokens)
                .SetTag("gen_ai.request.temperature", options?.Temperature)
                .SetTag("gen_ai.request.top_p", options?.TopP)
                .SetTag("gen_ai.request.top_k", options?.TopK)
                .SetTag("gen_ai.request.seed", options?.Seed)
                .SetTag("gen_ai.request.frequency_penalty", options?.FrequencyPenalty)
                .SetTag("gen_ai.request.presence_penalty", options?.PresencePenalty)
                .SetTag("gen_ai.request.stop_sequences", options?.StopSequences?.ToArray());
        }

        /// <summary>Records a finished generation: usage, finish reason, timings and the strategy's statistics.</summary>
        public void Finish(GenerationResult result, ChatFinishReason finishReason)
        {
            var stats = result.Stats;
            var seconds = Stopwatch.GetElapsedTime(_started).TotalSeconds;
            Count(stats.PromptTokens, result.Strategy);
            _owner._cachedPromptTokens.Add(stats.CachedPromptTokens, _model);
            _owner._completionTokens.Add(stats.GeneratedTokens, _model);
            _owner._generationSeconds.Add(stats.Elapsed.TotalSeconds, _model);
            double? tokensPerSecond = stats.GeneratedTokens > 0 && stats.Elapsed > TimeSpan.Zero ? stats.TokensPerSecond : null;
            if (tokensPerSecond is { } rate)
                _owner._tokensPerSecond.Record(rate, _model);
            double? mat = null;
            if (stats.Extra.TryGetValue("forwards", out var forwards) && forwards > 0)
            {
                mat = stats.GeneratedTokens / forwards;
                _owner._speculativeForwards.Add((long)forwards, _model);
                _owner._speculativeTokens.Add(stats.GeneratedTokens, _model);
                _owner._speculativeMat.Record(mat.Value, _model);
            }
            // The first token comes from the prefill's logits: the wait before the generation began, then its prefill.
            var firstToken = Math.Max(0, seconds - stats.Elapsed.TotalSeconds + stats.PrefillTime.TotalSeconds);
            _owner._timeToFirstToken.Record(firstToken, GenAiTags());
            if (stats.GeneratedTokens > 1)
                _owner._timePerOutputToken.Record(Math.Max(0, seconds - firstToken) / (stats.GeneratedTokens - 1), GenAiTags());
            _owner._requestDuration.Record(seconds, GenAiTags());
            _activity?.SetTag("gen_ai.response.model", _model.Value)
                .SetTag("gen_ai.response.finish_reasons", new[] { finishReason.Value })
                .SetTag("gen_ai.usage.input_tokens", stats.PromptTokens)
                .SetTag("gen_ai.usage.output_tokens", stats.GeneratedTokens)
                .SetTag("gen_ai.usage.cache_read.input_tokens", stats.CachedPromptTokens)
                .SetTag("gen_ai.response.time_to_first_chunk", firstToken)
                .SetTag("agenthost.decoding.strategy", result.Strategy)
                .SetTag("agenthost.tokens_per_second", tokensPerSecond)
                .SetTag("agenthost.speculative.mat", mat);
        }

        /// <summary>Records a finished embedding batch of <paramref name="tokens"/> input tokens.</summary>
        public void Finish(long tokens)
        {
            Count(tokens, null);
            _owner._requestDuration.Record(Stopwatch.GetElapsedTime(_started).TotalSeconds, GenAiTags());
            _activity?.SetTag("gen_ai.response.model", _model.Value).SetTag("gen_ai.usage.input_tokens", tokens);
        }

        /// <summary>Ends the span; one that never finished (an error or a cancellation) is marked as an error.</summary>
        public void Dispose()
        {
            _owner._active.Add(-1, _model);
            if (!_finished)
                _activity?.SetStatus(ActivityStatusCode.Error, "The request did not finish (it failed or was cancelled).").SetTag("error.type", "_OTHER");
            _activity?.Dispose();
        }

        private void Count(long promptTokens, string? strategy)
        {
            _finished = true;
            KeyValuePair<string, object?> operation = new("operation", _operation);
            if (strategy is null)
                _owner._generations.Add(1, _model, operation);
            else
                _owner._generations.Add(1, _model, operation, new("strategy", strategy));
            _owner._promptTokens.Add(promptTokens, _model);
        }

        private TagList GenAiTags() => new() { { "gen_ai.operation.name", _operation }, { "gen_ai.request.model", _model.Value } };
    }
}
