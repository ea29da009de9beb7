// The alerts: the chart's PrometheusRule, taken out as a rule file
// (examples/prometheus/alerts.yaml, kept equal to it), which promtool accepts
// and whose unit tests pass, with a firing and a quiet case for every alert.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse } from 'yaml'
import { requireCommands } from '../examples/toolchain.ts'
import { chartRuleFile, EXAMPLE_RULES } from './chart-rules.ts'

const DIR = join(import.meta.dirname, '..', '..', 'examples', 'prometheus')

interface RuleFile { groups: Array<{ rules: Array<{ alert?: string, expr: string, for?: string }> }> }
interface RuleTests { rule_files: string[], tests: Array<{ alert_rule_test?: Array<{ alertname: string, exp_alerts?: unknown[] }> }> }

const rules = parse(readFileSync(join(DIR, 'alerts.yaml'), 'utf8')) as RuleFile
const alerts = rules.groups.flatMap((g) => g.rules)

t.test("the rule file is the chart's PrometheusRule", async (t) => {
  t.equal(readFileSync(EXAMPLE_RULES, 'utf8'), await chartRuleFile(), 'regenerate it with node test/prometheus/chart-rules.ts')
  const byName = Object.fromEntries(alerts.map((r) => [r.alert, r]))
  t.strictSame(Object.keys(byName).sort(), ['KubeSecretProxySecretForbidden', 'KubeSecretProxySecretStale', 'KubeSecretProxyWatchFailing'])
  t.equal(byName.KubeSecretProxySecretStale?.expr, 'kube_secret_proxy_secret_stale == 1')
  t.equal(byName.KubeSecretProxyWatchFailing?.expr, 'sum by (namespace, pod) (rate(kube_secret_proxy_watch_restarts_total{reason!="timeout"}[10m])) * 60 > 0.5')
  t.equal(byName.KubeSecretProxySecretForbidden?.expr, 'kube_secret_proxy_secret_forbidden == 1')
})

t.test('every alert has a firing and a non-firing case', async (t) => {
  const tests = parse(readFileSync(join(DIR, 'alerts.test.yaml'), 'utf8')) as RuleTests
  t.strictSame(tests.rule_files, ['alerts.yaml'])
  const cases = tests.tests.flatMap((c) => c.alert_rule_test ?? [])
  for (const { alert } of alerts) {
    const mine = cases.filter((c) => c.alertname === alert)
    t.ok(mine.some((c) => (c.exp_alerts ?? []).length > 0), `${alert} fires in a case`)
    t.ok(mine.some((c) => (c.exp_alerts ?? []).length === 0), `${alert} stays quiet in a case`)
  }
})

t.test('promtool check rules and test rules', async (t) => {
  if (!requireCommands(t, 'promtool check/test rules', ['promtool'])) return
  const check = spawnSync('promtool', ['check', 'rules', 'alerts.yaml'], { cwd: DIR, encoding: 'utf8' })
  t.equal(check.status, 0, check.stdout + check.stderr)
  t.match(check.stdout, /SUCCESS: 3 rules found/)
  const unit = spawnSync('promtool', ['test', 'rules', 'alerts.test.yaml'], { cwd: DIR, encoding: 'utf8' })
  t.equal(unit.status, 0, unit.stdout + unit.stderr)
  t.match(unit.stdout, /SUCCESS/)
})
