using ConfigSpec.Aggregator;

using var cancel = new CancellationTokenSource();
return await AggregatorApp.RunAsync(args, Console.Out, Console.Error, cancel.Token).ConfigureAwait(false);
