using System.ClientModel;
using System.ClientModel.Primitives;
using System.Runtime.CompilerServices;
using AgentHost.Llama;
using AgentHost.Llama.Decoding;
using AgentHost.Llama.Models;
using Microsoft.Extensions.AI;
using OpenAI;

namespace AgentHost.Extensions.AI.Remote;

/// <summary>
/// An <see cref="IChatClient"/> on a remote catalog entry: MEAI's OpenAI client on the entry's OpenAI-compatible
/// endpoint, with the entry's timeout and retries (System.ClientModel's exponential backoff on connection failures,
/// timeouts, 408, 429 and 5xx). Requests name no AgentHost strategy but <c>greedy</c> (temperature 0) or <c>sample</c>:
/// the others need the model's logits token by token. A failure of the endpoint is one <see cref="AgentHostException"/>
/// (<see cref="ErrorKind.RemoteFailed"/>) naming the model, the endpoint and why. MEAI's OpenTelemetry client traces each
/// call under <see cref="AgentHostTelemetry.ActivitySourceName"/> (gen_ai spans, token usage and duration histograms).
/// </summary>
public sealed class RemoteChatClient : DelegatingChatClient
{
    private readonly string _name;
    private readonly RemoteModelSettings _settings;

    /// <summary>Creates a client for catalog entry <paramref name="name"/>.</summary>
    /// <param name="name">The catalog name (in errors; also the remote model name unless the entry sets one).</param>
    /// <param name="settings">The entry's remote settings.</param>
    /// <exception cref="AgentHostException">Invalid settings, or an API key variable that is not set.</exception>
    public RemoteChatClient(string name, RemoteModelSettings settings)
        : base(CreateOpenAiClient(name, settings))
    {
        _name = name;
        _settings = settings.Clone();
    }

    /// <summary>The catalog name.</summary>
    public string Name => _name;

    /// <summary>The endpoint requests go to.</summary>
    public Uri Endpoint => _settings.EndpointUri;

    /// <inheritdoc />
    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var forwarded = ToEndpointOptions(options);
        try
        {
            return await base.GetResponseAsync(messages, forwarded, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (Failure(e, cancellationToken) is { } failure)
        {
            throw failure;
        }
    }

    /// <inheritdoc />
    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var forwarded = ToEndpointOptions(options);
        var updates = base.GetStreamingResponseAsync(messages, forwarded, cancellationToken).GetAsyncEnumerator(cancellationToken);
        await using (updates.ConfigureAwait(false))
        {
            while (true)
            {
                try
                {
                    if (!await updates.MoveNextAsync().ConfigureAwait(false))
                        yield break;
                }
                catch (Exception e) when (Failure(e, cancellationToken) is { } failure)
                {
                    throw failure;
                }
                yield return updates.Current;
            }
        }
    }

    /// <summary>
    /// The options as the endpoint sees them: AgentHost's keys removed and <c>greedy</c> as temperature 0. Anything that
    /// needs the model's logits (another strategy, a strategy's knob, min_p, repeat_penalty) is refused, which also lets a
    /// caller check its options before the first request.
    /// </summary>
    /// <exception cref="AgentHostException"><see cref="ErrorKind.InvalidArgument"/> naming the option and why.</exception>
    public ChatOptions? ToEndpointOptions(ChatOptions? options)
    {
        if (options?.AdditionalProperties is not { Count: > 0 } properties)
            return options;
        var ours = properties.Keys.Where(IsAgentHostKey).ToList();
        if (ours.Count == 0)
            return options;
        var strategy = properties.TryGetValue(ChatRequestMapper.StrategyKey, out var named) ? DecodingStrategies.Find(Convert.ToString(named, System.Globalization.CultureInfo.InvariantCulture) ?? "") : null;
        if (strategy is not null && strategy != DecodingStrategies.Greedy && strategy != DecodingStrategies.Sample)
            throw _settings.NeedsLocalModel(_name, $"decoding strategy '{strategy.Name}'");
        if (ours.FirstOrDefault(k => k != ChatRequestMapper.StrategyKey) is { } knob)
            throw _settings.NeedsLocalModel(_name, $"option '{knob}'");

        var copy = options.Clone();
        copy.AdditionalProperties = new(properties.Where(p => !IsAgentHostKey(p.Key)));
        if (strategy == DecodingStrategies.Greedy)
            copy.Temperature = 0;
        return copy;
    }

    private static bool IsAgentHostKey(string key)
        => key is ChatRequestMapper.StrategyKey or ChatRequestMapper.MinPKey or ChatRequestMapper.RepeatPenaltyKey || DecodingStrategies.OptionKeys.Contains(key);

    /// <summary>The user-facing error of a failed call, or null for one that is not the endpoint's (the caller cancelled, a bug).</summary>
    private AgentHostException? Failure(Exception e, CancellationToken cancellationToken)
    {
        var where = $"Remote model '{_name}' at {_settings.Endpoint}";
        return e switch
        {
            _ when cancellationToken.IsCancellationRequested => null,
            // The retry policy gathers the failures of every try; the last one says why it gave up.
            AggregateException { InnerExceptions: [.., var last] } => Failure(last, cancellationToken),
            ClientResultException { Status: 401 or 403 } result => new(ErrorKind.RemoteFailed,
                $"{where} refused the API key (HTTP {result.Status}); set {ModelSettings.ConfigurationKey(_name, "Remote:ApiKey")} or the variable its ApiKeyVariable names.", e),
            ClientResultException { Status: > 0 } result => new(ErrorKind.RemoteFailed, $"{where} answered HTTP {result.Status}: {Detail(result)}", e),
            ClientResultException or HttpRequestException => new(ErrorKind.RemoteFailed,
                $"{where} could not be reached ({FirstLine(e.Message)}), after {_settings.MaxRetries} retries.", e),
            OperationCanceledException => new(ErrorKind.RemoteFailed,
                $"{where} did not answer within {_settings.TimeoutSeconds} s ({ModelSettings.ConfigurationKey(_name, "Remote:TimeoutSeconds")}), after {_settings.MaxRetries} retries.", e),
            _ => null,
        };
    }

    /// <summary>The endpoint's own error message (OpenAI's <c>{"error": {"message"}}</c>), else the exception's first line.</summary>
    private static string Detail(ClientResultException result)
    {
        try
        {
            using var body = System.Text.Json.JsonDocument.Parse(result.GetRawResponse()?.Content ?? BinaryData.Empty);
            if (body.RootElement.TryGetProperty("error", out var error) && error.TryGetProperty("message", out var message) && message.GetString() is { Length: > 0 } text)
                return FirstLine(text);
        }
        catch (System.Text.Json.JsonException)
        {
        }
        return FirstLine(result.Message);
    }

    private static string FirstLine(string message)
    {
        var line = message.Split('\n', 2)[0].Trim();
        return line.Length > 300 ? line[..300] + "..." : line;
    }

    private static IChatClient CreateOpenAiClient(string name, RemoteModelSettings settings)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(settings);
        settings.Validate(name);
        var options = new OpenAIClientOptions
        {
            Endpoint = settings.EndpointUri,
            NetworkTimeout = TimeSpan.FromSeconds(settings.TimeoutSeconds),
            RetryPolicy = new ClientRetryPolicy(settings.MaxRetries),
        };
        // An endpoint without keys ignores the header; the OpenAI client insists on a credential.
        var key = settings.ResolveApiKey(name) ?? "none";
        // Traced where the model is, as LlamaChatClient traces itself: gen_ai client spans and metrics under AgentHost's names.
        return new OpenAI.Chat.ChatClient(settings.RemoteName(name), new ApiKeyCredential(key), options).AsIChatClient()
            .AsBuilder().UseOpenTelemetry(sourceName: AgentHostTelemetry.ActivitySourceName).Build();
    }
}
