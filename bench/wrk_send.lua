-- wrk script for bench/simulator_throughput.py: valid text sends with the demo number's token,
-- rotating over a few recipients (each with an open customer-service window).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("SIM_TOKEN") or "simulator-token")

local recipients = {"6281200000001", "6281200000002", "6281200000003", "6281200000004"}
local counter = 0

request = function()
  counter = counter + 1
  local to = recipients[(counter % #recipients) + 1]
  local body = '{"messaging_product":"whatsapp","recipient_type":"individual","to":"' .. to ..
    '","type":"text","text":{"body":"Halo kak, pesanan Anda sudah dikirim."},' ..
    '"biz_opaque_callback_data":"bench-' .. counter .. '"}'
  return wrk.format(nil, nil, nil, body)
end
