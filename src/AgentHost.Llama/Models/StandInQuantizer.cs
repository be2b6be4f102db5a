using LLama;
using LLama.Native;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace AgentHost.Llama.Models;

/// <summary>
/// Keeps a quantized stand-in (<see cref="StandInSettings.Quantize"/>) in the user cache: its source file quantized by
/// llama.cpp's own quantizer (<see cref="LLamaQuantizer"/>, llama_model_quantize) with llama-quantize's defaults
/// (output.weight quantized too). Like <see cref="StandInBuilder"/>,
/// a build goes to a private <c>.part</c> file renamed into place when complete, with its SHA-256 recorded beside it;
/// an existing file is reused when its recorded digest holds and its GGUF file type is the one asked for.
/// </summary>
internal sealed partial class StandInQuantizer(ILogger logger)
{
    /// <summary>The llama.cpp file type of a <see cref="StandInSettings.Quantize"/> name (Q4_K_M, Q8_0, ...), or a clear error.</summary>
    public static LLamaFtype ParseType(string name, string entry)
    {
        var key = "MOSTLY_" + name.Trim().ToUpperInvariant();
        if (Enum.TryParse<LLamaFtype>(key, ignoreCase: false, out var type) && Enum.IsDefined(type))
            return type;
        var known = Enum.GetNames<LLamaFtype>().Where(n => n.StartsWith("MOSTLY_", StringComparison.Ordinal)).Select(n => n["MOSTLY_".Length..]);
        throw new AgentHostException(ErrorKind.InvalidArgument,
            $"The stand-in catalog entry '{entry}' has StandIn:Quantize '{name}', which is not a llama.cpp quantization type (known: {string.Join(", ", known)}).");
    }

    /// <summary>Makes sure <paramref name="target"/> holds <paramref name="sourcePath"/> quantized to <paramref name="type"/>; true when built now.</summary>
    public Task<bool> EnsureAsync(string name, string sourcePath, LLamaFtype type, string target, string? expectedSha256, CancellationToken cancellationToken)
        => Task.Run(() => Ensure(name, sourcePath, type, target, expectedSha256?.Trim().ToLowerInvariant(), cancellationToken), cancellationToken);

    private bool Ensure(string name, string sourcePath, LLamaFtype type, string target, string? expected, CancellationToken cancellationToken)
    {
        expected = StandInFiles.Expected(name, expected);
        if (StandInFiles.Reuse(name, target, expected, file => IsType(file, type), logger))
            return false;
        cancellationToken.ThrowIfCancellationRequested();
        LogBuilding(logger, name, target, type);
        StandInFiles.Build(name, target, expected, part =>
        {
            NativeRuntime.Configure(NullLoggerFactory.Instance);   // the log callback before the library loads; a host's later Configure redirects it
            NativeApi.llama_empty_call();   // loads libllama through LLamaSharp's resolver, which LLamaQuantizer's own import does not pass
            var ok = NativeRuntime.CaptureErrors(() => LLamaQuantizer.Quantize(sourcePath, part, type, nthread: -1, allowRequantize: false, quantizeOutputTensor: true), out var errors);
            if (!ok || !File.Exists(part))
            {
                throw new AgentHostException(ErrorKind.InvalidModelFile,
                    $"Quantizing '{sourcePath}' to {type} for the stand-in '{name}' failed{(errors.Length > 0 ? ": " + errors : ".")}");
            }
        }, logger);
        return true;
    }

    private static string? IsType(GgufFile file, LLamaFtype type)
    {
        var fileType = file.GetInteger("general.file_type");
        return fileType == (long)type ? null : $"its file type is {fileType}, not {type} ({(int)type})";
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Quantizing stand-in {Name} to {Type} at {Path}")]
    private static partial void LogBuilding(ILogger logger, string name, string path, LLamaFtype type);
}
