// Start GOV.UK Frontend's components (error summary focus, radios, details…).
import { initAll } from '../govuk-frontend.min.js'
initAll()
