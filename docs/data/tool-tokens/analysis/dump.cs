// Dumps what a tool-token head can read, per token of an annotated corpus: line, token, label, final hidden state and
// vocabulary logits, for the offline analysis in analyse.py. A .NET 10 file-based app:
//   AGENTHOST_MODELS_DIR=../shared/models dotnet run docs/data/tool-tokens/analysis/dump.cs -- OUT_DIR [corpus seeds...] [extra corpus files...]
// Each corpus becomes OUT_DIR/NAME.bin: records of int32 line, int32 token, int32 label (-1: not labelled; below V: the next
// token; V + i: tool i starts here), float32[d] hidden state, float32[V] logits. Labels are the ones ToolTokenDataset takes.
#:project ../../../../src/AgentHost.Llama/AgentHost.Llama.csproj
#:package LLamaSharp.Backend.Cpu
using AgentHost.Llama.Models;
using AgentHost.Llama.ToolTokens;

var outDir = args[0];
Directory.CreateDirectory(outDir);
var path = Environment.GetEnvironmentVariable("MODEL")
    ?? Path.Combine(Environment.GetEnvironmentVariable("AGENTHOST_MODELS_DIR") ?? "../shared/models", "stories260K.gguf");
using var model = LlamaModel.Load(Path.GetFileNameWithoutExtension(path), path, new ModelSettings { ContextSize = 512, Sequences = 4, HiddenStates = true });
using var session = await model.CreateSessionAsync(hiddenStates: true);
var tools = DemoCorpus.ToolNames.ToList();
int vocabulary = model.Vocabulary.Count;
Console.WriteLine($"V={vocabulary} d={model.EmbeddingSize}");

// The stories toolkens train adds by default (seed 1).
var stories = await ToolTokenNegatives.SampleAsync(session, ToolTokenNegatives.DefaultStories, 1);
await session.RunAsync(_ =>
{
    Dump("phrasings", AnnotatedCorpus.Parse(DemoCorpus.Phrasings));
    foreach (var file in args.Skip(1).Where(a => a.EndsWith(".txt")))
        Dump(Path.GetFileNameWithoutExtension(file), AnnotatedCorpus.Load(file));
    foreach (var seed in args.Skip(1).Where(a => !a.EndsWith(".txt")).Select(int.Parse))
    {
        var lines = DemoCorpus.Generate(DemoCorpus.DefaultTrainLines + 100, seed);
        Dump($"train{seed}", [.. Parse(lines.Take(DemoCorpus.DefaultTrainLines)), .. stories]);
        Dump($"heldout{seed}", Parse(lines.Skip(DemoCorpus.DefaultTrainLines)));
        Dump($"unseen{seed}", Parse(DemoCorpus.Generate(100, seed, DemoTemplates.Unseen)));
    }
    return 0;
});

static IReadOnlyList<AnnotatedExample> Parse(IEnumerable<string> lines) => AnnotatedCorpus.Parse(string.Join('\n', lines));

bool IsPrefix(int[] prefix, int[] tokens) => prefix.Length <= tokens.Length && prefix.AsSpan().SequenceEqual(tokens.AsSpan(0, prefix.Length));

void Dump(string name, IReadOnlyList<AnnotatedExample> examples)
{
    using var writer = new BinaryWriter(File.Create(Path.Combine(outDir, name + ".bin")));
    for (var e = 0; e < examples.Count; e++)
    {
        var example = examples[e];
        var tokens = model.Tokenize(example.Text, model.Vocabulary.AddBos);
        var targets = new int[tokens.Length];
        for (var p = 0; p + 1 < tokens.Length; p++)
            targets[p] = tokens[p + 1];
        targets[^1] = -1;
        foreach (var call in example.Calls)
        {
            var before = model.Tokenize(example.Text[..call.Start].TrimEnd(), model.Vocabulary.AddBos);
            if (!IsPrefix(before, tokens))
                before = model.Tokenize(example.Text[..call.Start], model.Vocabulary.AddBos);
            var through = model.Tokenize(example.Text[..(call.Start + call.Result.Length)], model.Vocabulary.AddBos);
            if (before.Length == 0 || through.Length <= before.Length || !IsPrefix(before, tokens) || !IsPrefix(through, tokens))
                throw new InvalidOperationException($"{name} line {example.Line}: the call does not start on a token boundary.");
            targets[before.Length - 1] = vocabulary + tools.IndexOf(call.Tool);
            for (var p = before.Length; p < through.Length - 1; p++)
                targets[p] = -1;
        }
        session.Reset();
        session.ClearBatch();
        for (var i = 0; i < tokens.Length; i++)
            session.AddToBatch(tokens[i], i, 0, logits: true);
        session.Decode();
        for (var i = 0; i < tokens.Length; i++)
        {
            writer.Write(e);
            writer.Write(tokens[i]);
            writer.Write(targets[i]);
            foreach (var x in session.GetHiddenState(i))
                writer.Write(x);
            foreach (var x in session.GetLogits(i))
                writer.Write(x);
        }
    }
}
