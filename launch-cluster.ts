// The cluster supervisor lands with the cluster issue; until then this only says so.
process.stderr.write('haarseek cluster: not yet implemented (see README, "Status")\n');
process.exitCode = 1;
