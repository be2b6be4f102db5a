using System.Reflection;
using System.Runtime.InteropServices;
using LLama.Native;

namespace AgentHost.Llama.Grammar;

/// <summary>
/// The few llama.cpp grammar calls, bound here rather than through LLamaSharp's sampler chain: its
/// <c>AddGrammar</c> cannot report a parse failure (llama.cpp returns NULL, the chain stores it and
/// crashes on first use) and its <c>AddLazyGrammar</c> binding lacks the pattern count argument.
/// </summary>
internal static partial class GrammarNative
{
    private const string Library = "llama";
    private static readonly Lock _gate = new();
    private static bool _resolverSet;

    [StructLayout(LayoutKind.Sequential)]
    internal struct TokenData
    {
        public int Id;
        public float Logit;
        public float Probability;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct TokenDataArray
    {
        public TokenData* Data;
        public nuint Size;
        public long Selected;
        public byte Sorted;   // C bool
    }

    internal sealed class SamplerHandle : SafeHandle
    {
        public SamplerHandle() : base(IntPtr.Zero, ownsHandle: true)
        {
        }

        public override bool IsInvalid => handle == IntPtr.Zero;

        protected override bool ReleaseHandle()
        {
            Free(handle);
            return true;
        }
    }

    /// <summary>Makes this assembly's imports of libllama resolve to the very library LLamaSharp loaded.</summary>
    internal static void EnsureResolver()
    {
        lock (_gate)
        {
            if (_resolverSet)
                return;
            NativeLibrary.SetDllImportResolver(typeof(GrammarNative).Assembly, Resolve);
            _resolverSet = true;
        }
    }

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (name != Library)
            return IntPtr.Zero;
        // LLamaSharp chooses the libllama build for this CPU (AVX level, CUDA) and keeps the handle
        // private; a second, different copy would not share its state. Make it load, then reuse its handle.
        NativeApi.llama_max_devices();
        var field = typeof(NativeApi).GetField("_loadedLlamaHandle", BindingFlags.NonPublic | BindingFlags.Static);
        if (field?.GetValue(null) is IntPtr handle && handle != IntPtr.Zero)
            return handle;
        throw new InvalidOperationException("Cannot find the llama library LLamaSharp loaded (LLamaSharp version mismatch?).");
    }

    [LibraryImport(Library, EntryPoint = "llama_model_get_vocab")]
    internal static partial IntPtr GetVocab(SafeLlamaModelHandle model);

    [LibraryImport(Library, EntryPoint = "llama_sampler_init_grammar", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial SamplerHandle InitGrammar(IntPtr vocab, string grammar, string root);

    [LibraryImport(Library, EntryPoint = "llama_sampler_apply")]
    internal static unsafe partial void Apply(SamplerHandle sampler, TokenDataArray* candidates);

    [LibraryImport(Library, EntryPoint = "llama_sampler_accept")]
    internal static partial void Accept(SamplerHandle sampler, int token);

    [LibraryImport(Library, EntryPoint = "llama_sampler_free")]
    private static partial void Free(IntPtr sampler);
}
