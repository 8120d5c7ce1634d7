/** WeChat Pay API v3 behind payrecon's PaymentGateway (docs/providers/wechatpay.md). */
export { readTradeBill } from './bill';
export {
  loadWechatPayConfig,
  loadWechatPayNotifyConfig,
  type WechatPayConfig,
  type WechatPayNotifyConfig,
} from './config';
export {
  StatementChecksumError,
  WechatPayError,
  WechatPayGateway,
  type WechatPayStatementLocation,
} from './gateway';
