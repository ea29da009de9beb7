// The chart's PrometheusRule is the one source of the alerts: promtool reads
// rule files, not PrometheusRule objects, so this renders the chart and
// takes spec.groups out. Run it to regenerate examples/prometheus/alerts.yaml:
//   node test/prometheus/chart-rules.ts
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { Helm, APP_CHART, ROOT, one } from '../charts/helm.ts'

export const EXAMPLE_RULES = join(ROOT, 'examples', 'prometheus', 'alerts.yaml')

const HEADER = `# Generated from the Helm chart's PrometheusRule (charts/kube-secret-proxy, metrics.prometheusRule)
# by test/prometheus/chart-rules.ts; a test keeps the two equal. As a plain rule file:
#   rule_files: [alerts.yaml]        in prometheus.yml
#   promtool check rules alerts.yaml && promtool test rules alerts.test.yaml
`

/** The rule file the chart's PrometheusRule amounts to, with its default alert settings. */
export async function chartRuleFile (): Promise<string> {
  const helm = await Helm.prepare()
  try {
    const docs = await helm.template(APP_CHART, { values: [`${APP_CHART}/ci/monitoring-values.yaml`] })
    return HEADER + stringify({ groups: one(docs, 'PrometheusRule').spec.groups }, { lineWidth: 0 })
  } finally {
    helm.cleanup()
  }
}

if (import.meta.main) {
  writeFileSync(EXAMPLE_RULES, await chartRuleFile())
  console.log(`wrote ${EXAMPLE_RULES}`)
}
