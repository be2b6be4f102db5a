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
    private static int _partCounter;

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
        if (expected is not null && !ModelDigest.IsSha256Hex(expected))
            throw new AgentHostException(ErrorKind.InvalidArgument, $"The catalog entry '{name}' has Sha256 '{expected}', which is not 64 hexadecimal digits.");
        if (File.Exists(target))
        {
            var problem = Verify(target, type, expected);
            if (problem is null)
            {
                LogReused(logger, name, target);
                return false;
            }
            LogRebuilding(logger, name, target, problem);
        }
        cancellationToken.ThrowIfCancellationRequested();

        var suffix = $".{Environment.ProcessId}-{Interlocked.Increment(ref _partCounter)}.part";
        var part = target + suffix;
        var digestPart = ModelDigest.PathFor(target) + suffix;
        var completed = false;
        LogBuilding(logger, name, target, type);
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            NativeRuntime.Configure(NullLoggerFactory.Instance);   // the log callback before the library loads; a host's later Configure redirects it
            NativeApi.llama_empty_call();   // loads libllama through LLamaSharp's resolver, which LLamaQuantizer's own import does not pass
            var ok = NativeRuntime.CaptureErrors(() => LLamaQuantizer.Quantize(sourcePath, part, type, nthread: -1, allowRequantize: false, quantizeOutputTensor: true), out var errors);
            if (!ok || !File.Exists(part))
            {
                throw new AgentHostException(ErrorKind.InvalidModelFile,
                    $"Quantizing '{sourcePath}' to {type} for the stand-in '{name}' failed{(errors.Length > 0 ? ": " + errors : ".")}");
            }
            var digest = ModelDigest.Compute(part);
            if (expected is not null && digest != expected)
            {
                throw new AgentHostException(ErrorKind.InvalidModelFile,
                    $"The stand-in '{name}' was built with the SHA-256 {digest}, not the catalog's {expected}: its source is not the one the catalog was made with; it was not kept.");
            }
            File.WriteAllText(digestPart, ModelDigest.Line(target, digest));
            File.Move(part, target, overwrite: true);
            File.Move(digestPart, ModelDigest.PathFor(target), overwrite: true);
            completed = true;
            LogBuilt(logger, name, target, digest);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new AgentHostException(ErrorKind.InvalidModelFile, $"Building the stand-in '{name}' at '{target}' failed: {e.Message.Trim().TrimEnd('.')}.", e);
        }
        finally
        {
            if (!completed)
            {
                PartialFiles.DeleteQuietly(part, logger);
                PartialFiles.DeleteQuietly(digestPart, logger);
            }
        }
    }

    /// <summary>Why the existing file cannot be reused, or null when it can.</summary>
    private static string? Verify(string target, LLamaFtype type, string? expected)
    {
        try
        {
            if (ModelDigest.Recorded(target) is not { } recorded)
                return "no SHA-256 was recorded beside it";
            var actual = ModelDigest.Compute(target);
            if (!string.Equals(actual, recorded, StringComparison.OrdinalIgnoreCase))
                return $"its SHA-256 is {actual}, not the recorded {recorded}";
            if (expected is not null && actual != expected)
                return $"its SHA-256 is {actual}, not the catalog's {expected}";
            var fileType = GgufFile.Read(target).GetInteger("general.file_type");
            return fileType == (long)type ? null : $"its file type is {fileType}, not {type} ({(int)type})";
        }
        catch (AgentHostException e)
        {
            return e.Message;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return e.Message;
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Stand-in {Name} reused from {Path}")]
    private static partial void LogReused(ILogger logger, string name, string path);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Stand-in {Name} at {Path} is rebuilt: {Problem}")]
    private static partial void LogRebuilding(ILogger logger, string name, string path, string problem);

    [LoggerMessage(Level = LogLevel.Information, Message = "Quantizing stand-in {Name} to {Type} at {Path}")]
    private static partial void LogBuilding(ILogger logger, string name, string path, LLamaFtype type);

    [LoggerMessage(Level = LogLevel.Information, Message = "Built stand-in {Name} at {Path}, SHA-256 {Sha256}")]
    private static partial void LogBuilt(ILogger logger, string name, string path, string sha256);
}
