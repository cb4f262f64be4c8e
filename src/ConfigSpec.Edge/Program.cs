using ConfigSpec.Edge.Cli;

return await EdgeCli.RunAsync(args, Console.Out, Console.Error).ConfigureAwait(false);
