using System.ComponentModel;
using Microsoft.SemanticKernel;

namespace AgentHost.Samples;

/// <summary>The sample's own native plugin; it prints each call so you (and CI) can see the model used it.</summary>
public sealed class WeatherPlugin
{
    /// <summary>How many times a model called <see cref="GetForecast"/>.</summary>
    public int Calls { get; private set; }

    /// <summary>A made-up forecast for a city.</summary>
    [KernelFunction, Description("Gets tomorrow's weather forecast for a city.")]
    public string GetForecast([Description("The city.")] string city)
    {
        Calls++;
        var forecast = $"sunny and 21 degrees in {city}";
        Console.WriteLine($"[tool] GetForecast(\"{city}\") -> {forecast}");
        return forecast;
    }
}
