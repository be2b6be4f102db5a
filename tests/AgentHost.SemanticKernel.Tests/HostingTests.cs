using System.Text.Json;
using System.Text.RegularExpressions;
using AgentHost.Extensions.AI;
using AgentHost.Llama;
using AgentHost.Llama.Hosting;
using AgentHost.Llama.Models;
using AgentHost.Llama.Tests;
using AgentHost.SemanticKernel.Tests.Agents;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Microsoft.SemanticKernel;
using Microsoft.SemanticKernel.ChatCompletion;

namespace AgentHost.SemanticKernel.Tests;

/// <summary>
/// A newcomer's first hour: one-line registration by catalog name or path, the model provider (load once, dispose
/// with the container) and <c>AddAgentHost(configuration)</c>, on the real stories260K model and real Semantic Kernel.
/// </summary>
[Collection(HostingCollection.Name)]
public sealed class HostingTests
{
    public HostingTests()
    {
        // What a user sets in the shell; the built-in catalog entry then finds the file there.
        Environment.SetEnvironmentVariable(AgentHostOptions.ModelsDirVariable, TestModels.Directory);
    }

    [Fact]
    public async Task One_line_kernel_gives_a_chat_completion_service_and_a_chat_client_that_answer()
    {
        var kernel = Kernel.CreateBuilder().AddLlamaChatCompletion("stories260k").Build();
        try
        {
            var service = kernel.GetRequiredService<IChatCompletionService>();
            var history = new ChatHistory();
            history.AddUserMessage("Tell me a story.");
            var reply = await service.GetChatMessageContentAsync(history, new LlamaPromptExecutionSettings { MaxTokens = 8 }, kernel);
            Assert.False(string.IsNullOrWhiteSpace(reply.Content));

            var client = kernel.GetRequiredService<IChatClient>();
            var response = await client.GetResponseAsync("Once upon a time", new ChatOptions { MaxOutputTokens = 8 });
            Assert.False(string.IsNullOrWhiteSpace(response.Text));
            Assert.Equal(8, response.Usage!.OutputTokenCount);
            Assert.Equal("stories260k", client.GetService<LlamaModel>()!.Name);

            var prompt = await kernel.InvokePromptAsync("Tell me about a cat.", new KernelArguments(new LlamaPromptExecutionSettings { MaxTokens = 6 }));
            Assert.False(string.IsNullOrWhiteSpace(prompt.ToString()));
        }
        finally
        {
            ((IDisposable)kernel.Services).Dispose();
        }
    }

    [Fact]
    public async Task Keyed_services_by_name_and_by_path_share_one_model_that_the_container_disposes()
    {
        var kernel = Kernel.CreateBuilder()
            .AddLlamaChatCompletion("stories260k", serviceId: "by-name")
            .AddLlamaChatCompletion(TestModels.Stories260K, serviceId: "by-path")
            .Build();
        var byName = kernel.GetRequiredService<IChatClient>("by-name");
        var byPath = kernel.GetRequiredService<IChatClient>("by-path");
        Assert.Null(kernel.Services.GetService<IChatCompletionService>());   // only the keyed ones were registered

        var model = byName.GetService<LlamaModel>()!;
        Assert.Same(model, byPath.GetService<LlamaModel>());
        Assert.Equal(TestModels.Stories260K, model.Path);
        var reply = await kernel.GetRequiredService<IChatCompletionService>("by-path")
            .GetChatMessageContentAsync("Once upon a time", new LlamaPromptExecutionSettings { MaxTokens = 5 }, kernel);
        Assert.False(string.IsNullOrWhiteSpace(reply.Content));

        ((IDisposable)kernel.Services).Dispose();
        Assert.True(model.Weights.NativeHandle.IsClosed);
    }

    [Fact]
    public async Task The_provider_loads_a_model_once_for_two_registrations_and_disposes_it_with_the_container()
    {
        var services = new ServiceCollection();
        services.AddLlamaChatClient("stories260k", serviceId: "a");
        services.AddLlamaChatClient("STORIES260K", serviceId: "b");
        LlamaModel model;
        using (var container = services.BuildServiceProvider())
        {
            var provider = container.GetRequiredService<ILlamaModelProvider>();
            var loads = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => provider.GetModelAsync("stories260k")));
            model = loads[0];
            Assert.All(loads, m => Assert.Same(model, m));
            Assert.Same(model, container.GetRequiredKeyedService<IChatClient>("a").GetService<LlamaModel>());
            Assert.Same(model, container.GetRequiredKeyedService<IChatClient>("b").GetService<LlamaModel>());
            Assert.False(model.Weights.NativeHandle.IsClosed);
        }
        Assert.True(model.Weights.NativeHandle.IsClosed);
    }

    [Fact]
    public async Task AddAgentHost_binds_a_custom_catalog_entry_from_configuration()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["AgentHost:Models:tiny:File"] = "stories260K.gguf",
            ["AgentHost:Models:tiny:ContextSize"] = "256",
            ["AgentHost:Models:tiny:Threads"] = "1",
        }).Build();
        var services = new ServiceCollection();
        services.AddAgentHost(configuration);
        services.AddLlamaChatClient("tiny");
        using var container = services.BuildServiceProvider();

        var options = container.GetRequiredService<IOptions<AgentHostOptions>>().Value;
        Assert.Equal(
            ["gemma3-1b", "gemma3-4b", "llama3.2-1b", "llama3.2-3b", "mistral-7b", "phi4-mini", "qwen2.5-0.5b", "qwen2.5-1.5b", "qwen2.5-7b",
             "stories260k", "stories260k-wide", "stories260k-wide-q4", "tiny", "tinystories656k"],
            options.Models.Keys.Order(StringComparer.Ordinal));
        var client = container.GetRequiredService<IChatClient>();
        var model = client.GetService<LlamaModel>()!;
        Assert.Equal(("tiny", 256, 1), (model.Name, model.ContextSize, model.Settings.Threads));
        var response = await client.GetResponseAsync("Once upon a time", new ChatOptions { MaxOutputTokens = 5 });
        Assert.Equal(5, response.Usage!.OutputTokenCount);
    }

    [Fact]
    public async Task The_kernel_builders_AddAgentHost_also_binds_plugins_and_agents()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["AgentHost:Models:mine:File"] = "stories260K.gguf",
            ["AgentHost:Models:mine:ContextSize"] = "128",
            ["Plugins:Native:0"] = "Math",
            ["Agents:MaxDepth"] = "5",
            ["Mcp:Servers:git:Command"] = "uvx",
            ["Mcp:Servers:git:Args:0"] = "mcp-server-git",
        }).Build();

        var kernel = Kernel.CreateBuilder().AddAgentHost(configuration).AddLlamaChatCompletion("mine").Build();
        try
        {
            Assert.Equal(["Math"], kernel.GetRequiredService<IOptions<AgentHost.SemanticKernel.Plugins.PluginOptions>>().Value.Native);
            Assert.Equal(5, kernel.GetRequiredService<IOptions<AgentHost.SemanticKernel.Agents.AgentOptions>>().Value.MaxDepth);
            var git = kernel.GetRequiredService<IOptions<AgentHost.SemanticKernel.Mcp.McpOptions>>().Value.Servers["git"];
            Assert.Equal("uvx", git.Command);
            Assert.Equal(["mcp-server-git"], git.Args);
            var reply = await kernel.GetRequiredService<IChatCompletionService>()
                .GetChatMessageContentAsync("Once upon a time", new LlamaPromptExecutionSettings { MaxTokens = 4 }, kernel);
            Assert.False(string.IsNullOrWhiteSpace(reply.Content));
            Assert.Equal(128, kernel.GetRequiredService<IChatClient>().GetService<LlamaModel>()!.ContextSize);
        }
        finally
        {
            ((IDisposable)kernel.Services).Dispose();
        }
    }

    [Fact]
    public void An_unknown_model_name_is_a_clear_error_listing_the_known_models()
    {
        var kernel = Kernel.CreateBuilder().AddLlamaChatCompletion("no-such-model").Build();

        var error = Assert.Throws<AgentHostException>(() => kernel.GetRequiredService<IChatCompletionService>());

        Assert.Equal(ErrorKind.ModelNotFound, error.Kind);
        Assert.Contains("Unknown model 'no-such-model'", error.Message);
        Assert.Contains("stories260k, stories260k-wide, stories260k-wide-q4, tinystories656k", error.Message);
    }

    [Fact]
    public async Task Embedding_generator_is_one_registration_keyed_like_the_chat_client_and_shares_its_model()
    {
        var services = new ServiceCollection()
            .AddLlamaChatClient("stories260k")
            .AddLlamaEmbeddingGenerator("stories260k")
            .AddLlamaEmbeddingGenerator(TestModels.Stories260K, serviceId: "by-path");
        LlamaModel model;
        using (var provider = services.BuildServiceProvider())
        {
            var generator = provider.GetRequiredService<IEmbeddingGenerator<string, Embedding<float>>>();
            var embeddings = await generator.GenerateAsync(["The cat sat on the mat."]);
            model = generator.GetService<LlamaModel>()!;
            Assert.Equal(model.EmbeddingSize, Assert.Single(embeddings).Vector.Length);
            Assert.Same(model, provider.GetRequiredService<IChatClient>().GetService<LlamaModel>());
            var byPath = provider.GetRequiredKeyedService<IEmbeddingGenerator<string, Embedding<float>>>("by-path");
            Assert.NotSame(generator, byPath);
            Assert.Same(model, byPath.GetService<LlamaModel>());
        }
        Assert.Throws<ObjectDisposedException>(() => model.Tokenize("a", addBos: false));
    }

    [Fact]
    public async Task Kernel_builder_adds_the_embedding_generator_by_service_id()
    {
        var kernel = Kernel.CreateBuilder().AddLlamaEmbeddingGenerator("stories260k", serviceId: "embed").Build();
        try
        {
            var generator = kernel.Services.GetRequiredKeyedService<IEmbeddingGenerator<string, Embedding<float>>>("embed");
            var embedding = await generator.GenerateVectorAsync("Lily had a red ball.");
            Assert.True(embedding.Length > 0);
            Assert.Null(kernel.Services.GetService<IEmbeddingGenerator<string, Embedding<float>>>());
        }
        finally
        {
            ((IDisposable)kernel.Services).Dispose();
        }
    }

    [Fact]
    public async Task AddAgentHost_registers_a_runner_for_the_yaml_agents_of_the_configured_folder()
    {
        var folder = Directory.CreateTempSubdirectory("agenthost-agents-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(folder, "teller.yaml"), """
                name: teller
                description: Tells a very short story.
                instructions: |
                  You are {{ name }}, a storyteller.
                max_tokens: 8
                """);
            var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["AgentHost:DefaultModel"] = "stories260k",
                ["Agents:Directory"] = folder,
            }).Build();
            var builder = Kernel.CreateBuilder().AddAgentHost(configuration);
            builder.Plugins.AddFromObject(new AgentHost.Plugins.MathPlugin(), "Math");
            var kernel = builder.Build();
            try
            {
                var runner = kernel.GetRequiredService<AgentHost.SemanticKernel.Agents.AgentRunner>();
                Assert.Same(runner, kernel.GetRequiredService<AgentHost.SemanticKernel.Agents.AgentRunner>());
                Assert.Equal(["teller"], runner.Catalog.Names);
                Assert.Contains(runner.Kernel.Plugins, p => p.Name == "Math");

                var result = await runner.RunAsync("teller", "Tell me a story.");

                Assert.Equal("teller", result.Agent);
                Assert.False(string.IsNullOrWhiteSpace(result.Answer));
            }
            finally
            {
                ((IDisposable)kernel.Services).Dispose();
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void A_generic_host_app_resolves_the_runner_after_AddAgentHost_and_AddAgentRunner()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Agents:Directory"] = AgentTests.ShippedAgentsDirectory,
            ["Agents:MaxDepth"] = "2",
        }).Build();
        var services = new ServiceCollection().AddAgentHost(configuration).AddAgentRunner(configuration);
        services.AddSingleton(new AgentHost.Plugins.MathPlugin());
        services.AddSingleton(sp => KernelPluginFactory.CreateFromObject(sp.GetRequiredService<AgentHost.Plugins.MathPlugin>(), "Math"));
        using var provider = services.BuildServiceProvider();

        var runner = provider.GetRequiredService<AgentHost.SemanticKernel.Agents.AgentRunner>();

        Assert.Equal(["calculator", "storyteller"], runner.Catalog.Names);
        Assert.Equal(2, runner.MaxDepth);
        Assert.Contains(runner.Kernel.Plugins, p => p.Name == "Math");
    }

    [Fact]
    public void Agent_runner_from_a_missing_folder_is_an_error_naming_it()
    {
        var missing = Path.Combine(Path.GetTempPath(), "agenthost-no-such-agents");
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Agents:Directory"] = missing }).Build();
        var kernel = Kernel.CreateBuilder().AddAgentHost(configuration).Build();
        try
        {
            var error = Assert.Throws<AgentHostException>(() => kernel.GetRequiredService<AgentHost.SemanticKernel.Agents.AgentRunner>());
            Assert.Contains(missing, error.Message, StringComparison.Ordinal);
        }
        finally
        {
            ((IDisposable)kernel.Services).Dispose();
        }
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class HostingCollection
{
    public const string Name = "hosting";
}

/// <summary>Forced tool calls cut off by max tokens, and tool lists that do not fit the context.</summary>
[Collection(ChatModelCollection.Name)]
public sealed class ToolBudgetTests(ChatModelFixture fixture)
{
    public sealed record Person(string Name, int Age);

    [Fact]
    public async Task A_typed_reply_cut_off_by_max_tokens_says_so_not_just_a_json_parse_error()
    {
        using var client = new LlamaChatClient(fixture.Model, new LlamaChatClientOptions { PromptCache = false });

        var typed = await Assert.ThrowsAsync<AgentHostException>(() =>
            client.GetResponseAsync<Person>("Who is Tim?", new ChatOptions { MaxOutputTokens = 3 }));

        Assert.Equal(ErrorKind.InvalidArgument, typed.Kind);
        Assert.Contains("cut off by the limit of 3 output tokens", typed.Message, StringComparison.Ordinal);
        Assert.Contains("finish reason length", typed.Message, StringComparison.Ordinal);
        Assert.Contains("MaxOutputTokens", typed.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task With_CutOffJsonIsError_off_a_cut_off_json_reply_is_partial_text_with_finish_reason_length()
    {
        using var client = new LlamaChatClient(fixture.Model, new LlamaChatClientOptions { PromptCache = false, CutOffJsonIsError = false });
        var schema = JsonDocument.Parse("""{"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}""").RootElement;

        var response = await client.GetResponseAsync("Who is Tim?", new ChatOptions { ResponseFormat = ChatResponseFormat.ForJsonSchema(schema), MaxOutputTokens = 3 });

        Assert.Equal(ChatFinishReason.Length, response.FinishReason);
        Assert.StartsWith("{", response.Text, StringComparison.Ordinal);
        Assert.ThrowsAny<JsonException>(() => JsonDocument.Parse(response.Text));
    }

    private static readonly AIFunction _weather = AIFunctionFactory.Create(
        (string city, string unit) => $"Sunny in {city}", "Weather_GetWeather", "Gets the current weather for a city.");

    [Fact]
    public async Task A_forced_tool_call_cut_off_by_max_tokens_is_a_clear_error_not_raw_markup()
    {
        using var client = new LlamaChatClient(fixture.Model, new LlamaChatClientOptions { PromptCache = false });
        var cut = new ChatOptions { Tools = [_weather], ToolMode = ChatToolMode.RequireAny, MaxOutputTokens = 6 };

        var error = await Assert.ThrowsAsync<AgentHostException>(() => client.GetResponseAsync("What is the weather in Paris?", cut));
        var streamed = await Assert.ThrowsAsync<AgentHostException>(async () =>
        {
            await foreach (var update in client.GetStreamingResponseAsync("What is the weather in Paris?", cut))
                Assert.DoesNotContain(client.Format.ToolCalls.CallStart, update.Text, StringComparison.Ordinal);
        });

        foreach (var e in new[] { error, streamed })
        {
            Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
            Assert.Contains("cut off by the limit of 6 output tokens", e.Message);
        }
        // With room for it, the same request gives a whole call.
        var whole = await client.GetResponseAsync("What is the weather in Paris?", new ChatOptions { Tools = [_weather], ToolMode = ChatToolMode.RequireAny, MaxOutputTokens = 200 });
        Assert.Equal("Weather_GetWeather", Assert.Single(whole.Messages.SelectMany(m => m.Contents).OfType<Microsoft.Extensions.AI.FunctionCallContent>()).Name);
    }

    [Fact]
    public async Task Calls_before_a_call_cut_off_by_max_tokens_stand_and_the_unfinished_one_is_dropped()
    {
        using var client = new LlamaChatClient(fixture.Model, new LlamaChatClientOptions { PromptCache = false });
        var add = AIFunctionFactory.Create((int a, int b) => a + b, "add", "Adds two numbers.");
        var options = new ChatOptions { Tools = [add], ToolMode = ChatToolMode.RequireAny, AllowMultipleToolCalls = true, MaxOutputTokens = 200 };

        var response = await client.GetResponseAsync("What is 3 plus 4, and 5 plus 6?", options);
        var streamed = new List<ChatResponseUpdate>();
        await foreach (var update in client.GetStreamingResponseAsync("What is 3 plus 4, and 5 plus 6?", options))
            streamed.Add(update);

        Assert.Equal("MaxTokens", response.AdditionalProperties!["stop_reason"]);   // the greedy reply runs into the limit mid-call
        Assert.Equal(ChatFinishReason.ToolCalls, response.FinishReason);
        Assert.NotEmpty(response.Messages.SelectMany(m => m.Contents).OfType<Microsoft.Extensions.AI.FunctionCallContent>());
        Assert.DoesNotContain(client.Format.ToolCalls.CallStart, response.Text, StringComparison.Ordinal);
        Assert.Equal(response.Messages.SelectMany(m => m.Contents).OfType<Microsoft.Extensions.AI.FunctionCallContent>().Count(),
            streamed.SelectMany(u => u.Contents).OfType<Microsoft.Extensions.AI.FunctionCallContent>().Count());
        Assert.DoesNotContain(client.Format.ToolCalls.CallStart, string.Concat(streamed.Select(u => u.Text)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_tool_lists_token_cost_is_reported_with_the_response()
    {
        using var client = new LlamaChatClient(fixture.Model, new LlamaChatClientOptions { PromptCache = false });
        var question = new ChatMessage(ChatRole.User, "What is the weather in Paris?");

        var withTools = await client.GetResponseAsync([question], new ChatOptions { Tools = [_weather], MaxOutputTokens = 4 });
        var without = await client.GetResponseAsync([question], new ChatOptions { MaxOutputTokens = 4 });

        var cost = Assert.IsType<int>(withTools.AdditionalProperties![LlamaChatClient.ToolTokensKey]);
        Assert.True(cost > 0);
        Assert.Equal(without.Usage!.InputTokenCount + cost, withTools.Usage!.InputTokenCount);
        Assert.False(without.AdditionalProperties!.ContainsKey(LlamaChatClient.ToolTokensKey));
    }

    [Fact]
    public async Task A_tool_list_larger_than_the_context_is_a_clear_error_naming_its_cost()
    {
        var settings = ChatModelFixture.Settings;
        settings.ContextSize = 512;
        using var small = LlamaModel.Load("stories260K", TestModels.Stories260K, settings);
        using var client = new LlamaChatClient(small);
        var tools = Enumerable.Range(1, 15).Select(i => (AITool)AIFunctionFactory.Create(
            (string city, string unit, int days) => "", $"Weather_Forecast{i}", "Gets the weather forecast for a city for the next few days, in the unit asked for.")).ToList();

        var error = await Assert.ThrowsAsync<AgentHostException>(() => client.GetResponseAsync("Hi", new ChatOptions { Tools = tools, MaxOutputTokens = 4 }));

        Assert.Equal(ErrorKind.ContextOverflow, error.Kind);
        var cost = int.Parse(Regex.Match(error.Message, @"The 15 tools offered cost (\d+) prompt tokens alone").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(cost > 512, error.Message);
        Assert.Contains("context of 512 tokens", error.Message);
        // One of the same tools fits.
        var fits = await client.GetResponseAsync("Hi", new ChatOptions { Tools = [tools[0]], MaxOutputTokens = 4 });
        Assert.True((int)fits.AdditionalProperties![LlamaChatClient.ToolTokensKey]! > 0);
    }

    [Fact]
    public async Task An_agent_renders_only_the_functions_its_definition_lists()
    {
        using var client = new LlamaChatClient(fixture.Model, new LlamaChatClientOptions { PromptCache = false });
        var observed = new ObservingChatClient(client);
        var kernel = new Kernel();
        var math = kernel.Plugins.AddFromObject(new AgentHost.Plugins.MathPlugin(), "Math");
        Assert.True(math.FunctionCount > 1);
        var runner = new AgentHost.SemanticKernel.Agents.AgentRunner(
            AgentHost.SemanticKernel.Agents.AgentCatalog.Load(AgentTests.ShippedAgentsDirectory), kernel, (_, _) => Task.FromResult<IChatClient>(observed));

        await runner.RunAsync("calculator", "What is 2 plus 3?");   // calculator.yaml lists plugins: [Math.Add]

        var (messages, options, inputTokens) = observed.Calls[0];
        var offered = Assert.Single(options!.Tools!);
        Assert.EndsWith("Add", offered.Name);
        // What the model read is the conversation rendered with that one function, not the plugin's others.
        var rendered = client.Format.Render([.. messages], [(AIFunctionDeclaration)offered], addGenerationPrompt: true).Tokenize(fixture.Model);
        Assert.Equal(rendered.Length, inputTokens);
        IReadOnlyList<AIFunctionDeclaration> all = [.. math];
        Assert.True(client.Format.Render([.. messages], all, addGenerationPrompt: true).Tokenize(fixture.Model).Length > rendered.Length);
    }

    /// <summary>Passes requests through to the real client and keeps what went in and came out.</summary>
    private sealed class ObservingChatClient(IChatClient inner) : DelegatingChatClient(inner)
    {
        public List<(List<ChatMessage> Messages, ChatOptions? Options, long? InputTokens)> Calls { get; } = [];

        public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
        {
            var list = messages.ToList();
            var response = await base.GetResponseAsync(list, options, cancellationToken);
            // The count, not the usage object: the invocation loop adds later rounds' usage into the first one's.
            Calls.Add((list, options, response.Usage?.InputTokenCount));
            return response;
        }

        // The runner's loop does not own the client.
        protected override void Dispose(bool disposing)
        {
        }
    }
}
