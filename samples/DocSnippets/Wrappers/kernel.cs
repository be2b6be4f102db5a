using Microsoft.SemanticKernel;
// Wrapper "kernel": a kernel (Kernel.CreateBuilder().AddLlamaChatCompletion(...).Build()).
internal static class __NAME__
{
    public static async Task RunAsync(Kernel kernel)
    {
/*SNIPPET*/
    }
}
