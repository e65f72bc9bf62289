// The cluster supervisor's entry point (`npm start` runs its compiled form,
// dist/launch-cluster.js); `haarseek cluster` runs the same code.
import { Command } from 'commander';
import { configureClusterCommand } from './src/cluster/command.ts';

await configureClusterCommand(new Command('launch-cluster')).parseAsync(process.argv);
