using System.Text.Json;
using AgentHost.Extensions.AI;
using AgentHost.SemanticKernel.Plugins;
using AgentHost.SemanticKernel.Templates;
using AgentHost.SemanticKernel.Tests.Plugins;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.SemanticKernel;
using Microsoft.SemanticKernel.ChatCompletion;

namespace AgentHost.SemanticKernel.Tests;

/// <summary>Semantic Kernel end to end on the real model: registration, prompt functions, IChatCompletionService, settings.</summary>
[Collection(ChatModelCollection.Name)]
public sealed class KernelIntegrationTests(ChatModelFixture fixture)
{
    private Kernel NewKernel(string? serviceId = null)
    {
        var builder = Kernel.CreateBuilder();
        builder.AddLlamaChatClient(fixture.Model, new LlamaChatClientOptions { PromptCache = false }, serviceId);
        return builder.Build();
    }

    [Fact]
    public async Task Kernel_prompt_function_runs_on_the_model()
    {
        var kernel = NewKernel();
        var settings = new LlamaPromptExecutionSettings { MaxTokens = 20 };

        var result = await kernel.InvokePromptAsync("Tell me a story about a dog.", new KernelArguments(settings));

        var response = result.GetValue<ChatResponse>();
        Assert.NotNull(response);
        Assert.False(string.IsNullOrWhiteSpace(result.ToString()));
        Assert.Equal(20, response.Usage!.OutputTokenCount);
    }

    [Fact]
    public async Task Scriban_prompt_function_renders_arguments_into_the_conversation()
    {
        var kernel = NewKernel();
        var function = kernel.CreateFunctionFromPrompt(
            new PromptTemplateConfig("system: You tell short stories.\nuser: Tell me about {{ animal }}.")
            {
                TemplateFormat = ScribanPromptTemplateFactory.ScribanTemplateFormat,
                ExecutionSettings = { ["default"] = new LlamaPromptExecutionSettings { MaxTokens = 15 } },
            },
            new ScribanPromptTemplateFactory());

        var result = await function.InvokeAsync(kernel, new KernelArguments { ["animal"] = "a cat" });

        var response = result.GetValue<ChatResponse>()!;
        var client = new LlamaChatClient(fixture.Model);
        var expectedPrompt = client.Format.Render([new(ChatRole.System, "You tell short stories."), new(ChatRole.User, "Tell me about a cat.")], addGenerationPrompt: true);
        Assert.Equal(expectedPrompt.Tokenize(fixture.Model).Length, response.Usage!.InputTokenCount);
        Assert.Equal(15, response.Usage.OutputTokenCount);
    }

    [Fact]
    public async Task Shipped_Scriban_prompt_plugin_runs_on_the_model_through_KernelInvokeAsync()
    {
        var kernel = NewKernel();
        kernel.ImportPlugins(new PluginOptions { PromptDirectories = [PromptPluginRenderingTests.ShippedPromptsDirectory] }, AppContext.BaseDirectory);
        var function = kernel.Plugins["Writing"]["ContinueStory"];

        // Settings in the arguments replace the plugin's own; a seed alone selects seeded sampling, so the reply repeats.
        var arguments = new KernelArguments(new LlamaPromptExecutionSettings { MaxTokens = 24, Seed = 11 }) { ["input"] = "Tom had a red kite.", ["words"] = 20 };
        var first = await kernel.InvokeAsync(function, arguments);
        var second = await kernel.InvokeAsync(function, arguments);

        var response = first.GetValue<ChatResponse>()!;
        Assert.Equal("sample", response.AdditionalProperties![ChatRequestMapper.StrategyKey]);
        Assert.Equal(24, response.Usage!.OutputTokenCount);
        Assert.False(string.IsNullOrWhiteSpace(first.ToString()));
        Assert.Equal(first.ToString(), second.ToString());
        // The rendered prompt (system + user with the story) is what the model read.
        var client = new LlamaChatClient(fixture.Model);
        var rendered = client.Format.Render(
        [
            new(ChatRole.System, "You are a storyteller for young children. Write simple, warm sentences with small words, and keep the characters, names and tone of the story you are given."),
            new(ChatRole.User, "Continue this story with about 20 more words. Reply with the continuation only.\n\nTom had a red kite."),
        ], addGenerationPrompt: true);
        Assert.Equal(rendered.Tokenize(fixture.Model).Length, response.Usage.InputTokenCount);
    }

    [Fact]
    public async Task Chat_completion_service_through_the_bridge_matches_the_client()
    {
        var kernel = NewKernel("stories");
        var chat = kernel.GetRequiredService<IChatClient>("stories").AsChatCompletionService();
        var history = new ChatHistory();
        history.AddUserMessage("Tell me a story about a frog.");

        var message = await chat.GetChatMessageContentAsync(history, new LlamaPromptExecutionSettings { MaxTokens = 25 }, kernel);

        using var client = new LlamaChatClient(fixture.Model, new LlamaChatClientOptions { PromptCache = false });
        var direct = await client.GetResponseAsync([new ChatMessage(ChatRole.User, "Tell me a story about a frog.")], new ChatOptions { MaxOutputTokens = 25 });
        Assert.Equal(AuthorRole.Assistant, message.Role);
        Assert.Equal(direct.Text, message.Content);

        var streamed = string.Concat(await chat.GetStreamingChatMessageContentsAsync(history, new LlamaPromptExecutionSettings { MaxTokens = 25 }, kernel).Select(m => m.Content).ToListAsync());
        Assert.Equal(direct.Text, streamed);
    }

    [Fact]
    public async Task Decoding_strategy_and_knobs_from_settings_reach_the_client()
    {
        var kernel = NewKernel();
        var settings = new LlamaPromptExecutionSettings
        {
            MaxTokens = 20,
            DecodingStrategy = "lookup",
            ExtensionData = new Dictionary<string, object> { ["lookup_ngram"] = 2 },
        };

        var result = await kernel.InvokePromptAsync("Tell me a story about a dog.", new KernelArguments(settings));

        var response = result.GetValue<ChatResponse>()!;
        Assert.Equal("lookup", response.AdditionalProperties![ChatRequestMapper.StrategyKey]);
    }

    [Fact]
    public void Settings_round_trip_freeze_and_clone()
    {
        var generic = new PromptExecutionSettings
        {
            ExtensionData = new Dictionary<string, object>
            {
                ["temperature"] = 0.5, ["top_k"] = 20, ["max_tokens"] = 64, ["decoding_strategy"] = "cautious",
                ["stop_sequences"] = new[] { "The end" }, ["cautious_max_trials"] = 4,
            },
            FunctionChoiceBehavior = FunctionChoiceBehavior.Auto(),
        };

        var settings = LlamaPromptExecutionSettings.FromExecutionSettings(generic);

        Assert.Equal(0.5f, settings.Temperature);
        Assert.Equal(20, settings.TopK);
        Assert.Equal(64, settings.MaxTokens);
        Assert.Equal("cautious", settings.DecodingStrategy);
        Assert.Equal(["The end"], settings.StopSequences!);
        Assert.Equal(4, ((JsonElement)settings.ExtensionData!["cautious_max_trials"]).GetInt32());
        Assert.Same(generic.FunctionChoiceBehavior, settings.FunctionChoiceBehavior);

        var clone = (LlamaPromptExecutionSettings)settings.Clone();
        settings.Freeze();
        Assert.Throws<InvalidOperationException>(() => settings.TopP = 0.9f);
        clone.TopP = 0.9f;
        Assert.Equal(0.9f, clone.TopP);
        Assert.Equal("cautious", clone.DecodingStrategy);

        var options = settings.ToChatOptions(new Kernel());
        Assert.Equal(0.5f, options.Temperature);
        Assert.Equal(64, options.MaxOutputTokens);
        Assert.Equal("cautious", options.AdditionalProperties![ChatRequestMapper.StrategyKey]);
        Assert.Equal(4.0, options.AdditionalProperties["cautious_max_trials"]);
    }

    [Fact]
    public void Client_is_registered_under_its_service_id_with_logging_and_function_invocation()
    {
        var services = new ServiceCollection();
        services.AddLlamaChatClient(fixture.Model, serviceId: "local");
        using var provider = services.BuildServiceProvider();

        var client = provider.GetRequiredKeyedService<IChatClient>("local");

        Assert.IsType<LlamaChatClient>(client.GetService<LlamaChatClient>());
        Assert.NotNull(client.GetService<FunctionInvokingChatClient>());
        Assert.Null(provider.GetKeyedService<IChatClient>("other"));
    }
}
