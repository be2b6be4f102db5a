// Semantic Kernel on a local GGUF model through the AgentHost packages: a prompt function, a Scriban
// template, a decoding strategy in the execution settings, streaming chat, a native plugin called with
// FunctionChoiceBehavior.Required and Auto, and Microsoft.Agents.AI's ChatClientAgent.
// Run: dotnet run -- path/to/stories260K.gguf   (or set AGENTHOST_MODELS_DIR)
using AgentHost.Llama;
using AgentHost.Samples;
using AgentHost.SemanticKernel.Templates;
using Microsoft.Agents.AI;
using Microsoft.Extensions.AI;
using Microsoft.SemanticKernel;
using Microsoft.SemanticKernel.ChatCompletion;

var modelPath = SampleModel.PathFrom(args);
if (modelPath is null)
{
    return 1;
}

// Registration, one line: IChatClient and IChatCompletionService on the model (a catalog name such as
// "stories260k" works too), loaded once at first use and disposed with the kernel's services.
var kernel = Kernel.CreateBuilder().AddLlamaChatCompletion(modelPath).Build();
using var services = (IDisposable)kernel.Services;
try
{

    var weather = new WeatherPlugin();
    kernel.Plugins.AddFromObject(weather, "Weather");

    // A prompt function (greedy by default).
    var story = kernel.CreateFunctionFromPrompt("Once upon a time", new LlamaPromptExecutionSettings { MaxTokens = 24 });
    var greedy = await kernel.InvokeAsync<string>(story);
    Console.WriteLine($"[prompt function] {greedy}");

    // A decoding strategy through the execution settings: token recycling is lossless, so it equals greedy.
    var recycled = await kernel.InvokePromptAsync<string>("Once upon a time",
        new(new LlamaPromptExecutionSettings { MaxTokens = 24, DecodingStrategy = "recycling" }));
    Console.WriteLine($"[decoding recycling] {recycled}");
    Console.WriteLine($"[decoding recycling] equals greedy: {recycled == greedy}");

    // A Scriban template ("scriban" template format).
    var templateFactory = new ScribanPromptTemplateFactory();
    var scribanConfig = new PromptTemplateConfig("Once upon a time, {{ hero }} found {{ for t in things }}{{ t }}{{ if !for.last }} and {{ end }}{{ end }}.")
    {
        TemplateFormat = ScribanPromptTemplateFactory.ScribanTemplateFormat,
        Name = "storyStart",
    };
    scribanConfig.AddExecutionSettings(new LlamaPromptExecutionSettings { MaxTokens = 24 });
    var scribanArguments = new KernelArguments { ["hero"] = "Lily", ["things"] = new[] { "a ball", "a cat" } };
    Console.WriteLine($"[scriban rendered] {await templateFactory.Create(scribanConfig).RenderAsync(kernel, scribanArguments)}");
    var scribanStory = kernel.CreateFunctionFromPrompt(scribanConfig, templateFactory);
    Console.WriteLine($"[scriban] {await kernel.InvokeAsync<string>(scribanStory, scribanArguments)}");

    // Streaming chat through SK's chat completion service.
    var chat = kernel.GetRequiredService<IChatCompletionService>();
    var history = new ChatHistory();
    history.AddUserMessage("Tell me a story about a dog.");
    Console.Write("[streaming] ");
    var chunks = 0;
    await foreach (var chunk in chat.GetStreamingChatMessageContentsAsync(history, new LlamaPromptExecutionSettings { MaxTokens = 24 }, kernel))
    {
        Console.Write(chunk.Content);
        chunks++;
    }
    Console.WriteLine();
    Console.WriteLine($"[streaming] {chunks} chunks");

    // The native plugin, Required: the grammar forces a call, SK invokes the plugin and the model answers.
    var getForecast = kernel.Plugins.GetFunction("Weather", "GetForecast");
    history = new ChatHistory();
    history.AddUserMessage("What will the weather be in Paris?");
    var required = await chat.GetChatMessageContentAsync(history,
        new LlamaPromptExecutionSettings { MaxTokens = 96, FunctionChoiceBehavior = FunctionChoiceBehavior.Required([getForecast]) }, kernel);
    Console.WriteLine($"[required] plugin calls: {weather.Calls}; answer: {required.Content}");

    // Auto: the tools are offered and the model decides (a story model rarely calls one).
    var callsBefore = weather.Calls;
    history = new ChatHistory();
    history.AddUserMessage("What will the weather be in Rome?");
    var auto = await chat.GetChatMessageContentAsync(history,
        new LlamaPromptExecutionSettings { MaxTokens = 48, FunctionChoiceBehavior = FunctionChoiceBehavior.Auto() }, kernel);
    Console.WriteLine($"[auto] plugin calls: {weather.Calls - callsBefore}; answer: {auto.Content}");

    // Microsoft.Agents.AI: a ChatClientAgent on the same client, with the plugin's function as its tool.
    var agent = new ChatClientAgent(kernel.GetRequiredService<IChatClient>(), instructions: "You answer weather questions with GetForecast.",
        name: "forecaster", tools: [AIFunctionFactory.Create(weather.GetForecast)]);
    callsBefore = weather.Calls;
    var agentResponse = await agent.RunAsync("What will the weather be in Oslo?",
        options: new ChatClientAgentRunOptions(new ChatOptions { ToolMode = ChatToolMode.RequireAny, MaxOutputTokens = 96 }));
    Console.WriteLine($"[agent] plugin calls: {weather.Calls - callsBefore}; answer: {agentResponse.Text}");
}
catch (AgentHostException ex)
{
    // A file that is not a usable model, a context too small for the tools ...: one line, exit 1.
    Console.Error.WriteLine($"error: {ex.Message}");
    return 1;
}
return 0;
