export const trace = (what: string) => { if (process.env.XP_TRACE) process.stderr.write(`TRACE ${(performance.now()).toFixed(0)} ms ${what}\n`); };
