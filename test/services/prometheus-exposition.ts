// A strict check of Prometheus' text exposition format, shared by the metrics tests.
/**
 * The text format's grammar (exposition format 0.0.4, as node_exporter's textfile collector
 * reads it): HELP and TYPE once per family, before its samples; names and labels by the
 * spec's patterns; escaped label values; float values; every sample belongs to the family
 * just declared; no family twice.
 */
export function checkExposition(text: string): string[] {
  const problems: string[] = [];
  const name = '[a-zA-Z_:][a-zA-Z0-9_:]*';
  const label = '[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
  const sample = new RegExp(`^(${name})(\\{(?:${label})(?:,${label})*\\})? (-?(?:\\d+(?:\\.\\d+)?(?:e[+-]?\\d+)?|\\+Inf|-Inf|NaN))$`);
  const seen = new Set<string>();
  const series = new Set<string>();
  let current: string | undefined;
  if (!text.endsWith('\n')) problems.push('no newline at the end');
  for (const [i, line] of text.split('\n').slice(0, -1).entries()) {
    const help = new RegExp(`^# HELP (${name}) .+$`).exec(line);
    const type = new RegExp(`^# TYPE (${name}) (counter|gauge|summary|histogram|untyped)$`).exec(line);
    if (help) {
      if (seen.has(help[1]!)) problems.push(`line ${i + 1}: ${help[1]} declared twice`);
      seen.add(help[1]!);
      current = help[1];
    } else if (type) {
      if (type[1] !== current) problems.push(`line ${i + 1}: TYPE for ${type[1]} outside its family`);
    } else {
      const m = sample.exec(line);
      if (!m) problems.push(`line ${i + 1}: not a sample: ${line}`);
      else {
        if (m[1] !== current) problems.push(`line ${i + 1}: ${m[1]} outside its family ${current}`);
        if (series.has(`${m[1]}${m[2] ?? ''}`)) problems.push(`line ${i + 1}: duplicate series`);
        series.add(`${m[1]}${m[2] ?? ''}`);
      }
    }
  }
  return problems;
}
