using System.Text.Json;
using Microsoft.SemanticKernel;

namespace AgentHost.Plugins.Tests;

/// <summary>The skills as a real Semantic Kernel sees them: functions, JSON schemas, invocation with arguments.</summary>
public class KernelInvocationTests
{
    private static Kernel KernelWithAllPlugins()
    {
        var kernel = new Kernel();
        foreach (var (name, plugin) in NativePlugins.Create())
            kernel.ImportPluginFromObject(plugin, name);
        return kernel;
    }

    [Fact]
    public void Catalog_exposes_described_functions()
    {
        var kernel = KernelWithAllPlugins();
        Assert.Equal(["Math", "Time", "Text"], kernel.Plugins.Select(p => p.Name).ToArray());
        Assert.Equal(["Add", "Divide", "Evaluate", "Multiply", "Subtract"], kernel.Plugins["Math"].Select(f => f.Name).Order(StringComparer.Ordinal).ToArray());
        foreach (var function in kernel.Plugins.GetFunctionsMetadata())
        {
            Assert.False(string.IsNullOrWhiteSpace(function.Description), $"{function.PluginName}.{function.Name} has no description");
            Assert.All(function.Parameters, p => Assert.False(string.IsNullOrWhiteSpace(p.Description), $"{function.Name}({p.Name}) has no description"));
        }
    }

    [Fact]
    public void Parameters_have_typed_JSON_schemas()
    {
        var add = KernelWithAllPlugins().Plugins.GetFunction("Math", "Add");
        var schema = JsonDocument.Parse(add.JsonSchema.GetRawText()).RootElement;
        Assert.Equal("number", schema.GetProperty("properties").GetProperty("a").GetProperty("type").GetString());
        Assert.Equal(["a", "b"], schema.GetProperty("required").EnumerateArray().Select(e => e.GetString()!).ToArray());

        var addDays = KernelWithAllPlugins().Plugins.GetFunction("Time", "AddDays");
        var days = JsonDocument.Parse(addDays.JsonSchema.GetRawText()).RootElement.GetProperty("properties").GetProperty("days");
        Assert.Equal("integer", days.GetProperty("type").GetString());
    }

    [Fact]
    public async Task Functions_invoke_through_the_kernel_with_string_arguments()
    {
        var kernel = KernelWithAllPlugins();
        // Function calling and prompt templates hand arguments over as text; the kernel converts them.
        var sum = await kernel.InvokeAsync(kernel.Plugins.GetFunction("Math", "Add"), new KernelArguments { ["a"] = "2.5", ["b"] = "4" });
        Assert.Equal(6.5, sum.GetValue<double>());
        var value = await kernel.InvokeAsync(kernel.Plugins.GetFunction("Math", "Evaluate"), new KernelArguments { ["expression"] = "2^10 - 1" });
        Assert.Equal(1023, value.GetValue<double>());
        var words = await kernel.InvokeAsync(kernel.Plugins.GetFunction("Text", "WordCount"), new KernelArguments { ["text"] = "one two three" });
        Assert.Equal(3, words.GetValue<int>());
        var date = await kernel.InvokeAsync(kernel.Plugins.GetFunction("Time", "AddDays"), new KernelArguments { ["date"] = "2026-11-28", ["days"] = "-28" });
        Assert.Equal("2026-10-31", date.GetValue<string>());
    }

    [Fact]
    public async Task A_failing_function_throws_its_clear_error()
    {
        var kernel = KernelWithAllPlugins();
        var error = await Assert.ThrowsAsync<DivideByZeroException>(() =>
            kernel.InvokeAsync(kernel.Plugins.GetFunction("Math", "Evaluate"), new KernelArguments { ["expression"] = "1 / (2 - 2)" }));
        Assert.Contains("Division by zero", error.Message);
        var bad = await Assert.ThrowsAsync<ArgumentException>(() =>
            kernel.InvokeAsync(kernel.Plugins.GetFunction("Time", "DayOfWeek"), new KernelArguments { ["date"] = "next friday" }));
        Assert.Contains("'next friday' is not a date", bad.Message);
    }
}
